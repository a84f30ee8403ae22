//! `tofu-report`: HTML reports of saved run records.
//!
//! ```text
//! tofu-report RECORD.json     writes RECORD.html next to it
//! tofu-report DIR             writes the report of every record in DIR, and DIR/index.html
//! ```
//!
//! Prints the path of every file written. Exits 1 if any record could not be rendered.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: tofu-report PATH...

  PATH is a run record (OpenHTF-format JSON, from tofu or OpenHTF): its report is
  written next to it, with the same name ending in .html.
  PATH is a folder: the report of every record in it is written, then index.html
  (one row per run, newest first). JSON files that are not records are skipped.

Prints the path of every file written; exits 1 if anything could not be rendered.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut ok = true;
    for arg in &args {
        let path = Path::new(arg);
        ok &= if path.is_dir() {
            folder(path)
        } else {
            report(path)
        };
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(path: &Path) -> bool {
    match tofu_report::render_file(path) {
        Ok(html) => {
            println!("{}", html.display());
            true
        }
        Err(e) => {
            eprintln!("tofu-report: {e}");
            false
        }
    }
}

fn folder(dir: &Path) -> bool {
    let mut ok = true;
    let index = tofu_report::render_folder(dir, |_, report| match report {
        Ok(html) => println!("{}", html.display()),
        Err(e @ tofu_report::Error::NotARecord { .. }) => {
            eprintln!("tofu-report: skipped: {e}")
        }
        Err(e) => {
            eprintln!("tofu-report: {e}");
            ok = false;
        }
    });
    match index {
        Ok(index) => println!("{}", index.display()),
        Err(e) => {
            eprintln!("tofu-report: {e}");
            ok = false;
        }
    }
    ok
}
