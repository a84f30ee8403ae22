//! The tofu side of `bench/scpi_compare.sh`: query round trips per second and 1 MiB block
//! reads against an instrument (the `tofu-sim` process), printed as one JSON line.
//!
//! `cargo run --release -p tofu-instruments --example scpi_rate -- ADDRESS [QUERIES] [BLOCKS]`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tofu_instruments::{Address, InstrumentError, Scpi, ScpiOptions};

fn run(address: &str, queries: u32, blocks: u32) -> Result<String, InstrumentError> {
    let address = Address::parse(address)?;
    let options = ScpiOptions {
        timeout: Duration::from_secs(10),
        check_errors: false,
        ..ScpiOptions::default()
    };
    let mut scpi = Scpi::connect("bench", &address, options)?;
    for _ in 0..100 {
        scpi.query("*IDN?")?; // warm-up
    }
    let start = Instant::now();
    for _ in 0..queries {
        scpi.query("*IDN?")?;
    }
    let query_s = start.elapsed().as_secs_f64();
    // The same with the error queue read after each query (two round trips each).
    scpi.options_mut().check_errors = true;
    let start = Instant::now();
    for _ in 0..queries {
        scpi.query("*IDN?")?;
    }
    let checked_s = start.elapsed().as_secs_f64();
    scpi.options_mut().check_errors = false;
    let mut block_times = Vec::new();
    let mut bytes = 0;
    for _ in 0..blocks {
        let start = Instant::now();
        bytes = scpi.query_block("TRAC:DATA?")?.len();
        block_times.push(start.elapsed().as_secs_f64());
    }
    block_times.sort_by(f64::total_cmp);
    let median = block_times
        .get(block_times.len() / 2)
        .copied()
        .unwrap_or(0.0);
    Ok(format!(
        "{{\"queries\": {queries}, \"query_rate\": {:.1}, \"checked_query_rate\": {:.1}, \"block_bytes\": {bytes}, \"block_median_s\": {median:.6}}}",
        f64::from(queries) / query_s,
        f64::from(queries) / checked_s,
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(address) = args.first() else {
        eprintln!("usage: scpi_rate ADDRESS [QUERIES] [BLOCKS]");
        return ExitCode::from(2);
    };
    let number =
        |i: usize, default: u32| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match run(address, number(1, 10_000), number(2, 20)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scpi_rate: {e}");
            ExitCode::FAILURE
        }
    }
}
