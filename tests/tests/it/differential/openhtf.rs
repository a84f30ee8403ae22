//! OpenHTF 1.6.3 in a virtual environment of its own (made once, under `target/`), and the
//! runner `tests/openhtf/run_trees.py` that executes trees in it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use super::tree::Tree;

/// Set to 1 (CI does) to make a missing OpenHTF a failure rather than a skip.
pub(super) const REQUIRE_ENV: &str = "TOFU_REQUIRE_OPENHTF";
const OPENHTF: &str = "openhtf==1.6.3";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn runner() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openhtf/run_trees.py")
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("can't run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A Python 3.10 or newer: `$TOFU_PYTHON`, else the first of python3.11, python3.12, python3.
fn base_python() -> Result<String, String> {
    let candidates: Vec<String> = match std::env::var("TOFU_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => [
            "python3.11",
            "python3.12",
            "python3.13",
            "python3.10",
            "python3",
        ]
        .map(String::from)
        .to_vec(),
    };
    candidates
        .into_iter()
        .find(|p| {
            run(Command::new(p)
                .args(["-c", "import sys, venv; assert sys.version_info >= (3, 10)"]))
            .is_ok()
        })
        .ok_or_else(|| "no Python 3.10 or newer with venv (set TOFU_PYTHON)".to_owned())
}

/// Makes the virtual environment with OpenHTF, or finds it made.
fn make_venv() -> Result<PathBuf, String> {
    let venv = target_dir().join("openhtf-1.6.3-venv");
    let python = venv.join("bin/python");
    if venv.join(".installed").exists() {
        return Ok(python);
    }
    let base = base_python()?;
    // Made aside and renamed into place: two test processes may make it at once.
    let building = target_dir().join(format!("openhtf-venv.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    run(Command::new(&base).arg("-m").arg("venv").arg(&building))?;
    run(Command::new(building.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        OPENHTF,
    ]))?;
    std::fs::write(building.join(".installed"), OPENHTF).map_err(|e| e.to_string())?;
    if std::fs::rename(&building, &venv).is_err() {
        // Another process got there first; use its environment.
        let _ = std::fs::remove_dir_all(&building);
        if !venv.join(".installed").exists() {
            return Err(format!(
                "can't move {} to {}",
                building.display(),
                venv.display()
            ));
        }
    }
    Ok(python)
}

/// The venv's Python, or `None` after saying loudly why the test is skipped (a failure when
/// `TOFU_REQUIRE_OPENHTF=1`).
pub(super) fn python(test: &str) -> Option<PathBuf> {
    match make_venv() {
        Ok(python) => Some(python),
        Err(why) => {
            let message = format!("{test}: SKIPPED, OpenHTF 1.6.3 can't be installed: {why}");
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{message} ({REQUIRE_ENV}=1: a skip is a failure)");
            }
            // Straight to the process's stderr: the harness captures `eprintln!`, not this.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! {message}\n!!!!! set {REQUIRE_ENV}=1 to make this a failure\n"
            );
            None
        }
    }
}

/// What OpenHTF made of one tree: its JSON record and its record in memory, each in the shape
/// of `compare::normalize`.
pub(super) struct Outcome {
    pub(super) json: Json,
    pub(super) in_memory: Json,
}

/// Runs every tree in one OpenHTF process.
pub(super) fn run_trees(python: &Path, trees: &[Tree]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (
        dir.path().join("trees.json"),
        dir.path().join("records.jsonl"),
    );
    std::fs::write(&input, serde_json::to_vec(trees).expect("trees are JSON"))
        .expect("write trees");
    let out = Command::new(python)
        .arg(runner())
        .env("TOFU_DIFF_IN", &input)
        .env("TOFU_DIFF_OUT", &output)
        .output()
        .expect("run OpenHTF");
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let records: Vec<Outcome> = text
        .lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line).expect("a JSON line");
            Outcome {
                json: v["json"].clone(),
                in_memory: v["mem"].clone(),
            }
        })
        .collect();
    assert!(
        out.status.success() && records.len() == trees.len(),
        "OpenHTF's runner ended {} after {} of {} trees:\n{}",
        out.status,
        records.len(),
        trees.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    records
}
