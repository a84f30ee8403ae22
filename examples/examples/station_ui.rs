//! The operator's station page: four slots sharing one bench supply, units scanned on the
//! page, a visual check asked in one phase, an IV sweep charted live.
//!
//! `cargo run --example station_ui` prints the page's URL (http://127.0.0.1:8080/); open it,
//! scan (or type) a serial number into any free slot and press Enter: the slot starts. Each
//! slot asks for its next unit as soon as its run is closed; its PASS/FAIL banner stays until
//! then. The board in slot 3 draws too much current (FAIL). Ctrl-C stops the station.
//!
//! `-- --port 9000`, `-- --bind 0.0.0.0` (a token is then generated and printed in the URL;
//! `-- --token SECRET` to choose it), `-- --records DIR` (the record folder listed on the
//! page), `-- --sweep-ms 20` (the time between sweep points).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tofu::prelude::*;
use tofu::station_page::Serve as _;

type PlugError = Box<dyn std::error::Error + Send + Sync>;

/// The bench supply: one for the station, switched to one board at a time.
#[derive(Default)]
struct PowerSupply {
    volts: f64,
}

impl Plug for PowerSupply {
    fn teardown(&mut self) -> Result<(), PlugError> {
        self.volts = 0.0;
        tracing::info!("power supply off");
        Ok(())
    }
}

/// The board in a slot (simulated: the one in slot 3 has a shorted capacitor).
struct Board {
    slot: usize,
    input_ohms: f64,
    sweep_pause: Duration,
}

impl Plug for Board {
    fn teardown(&mut self) -> Result<(), PlugError> {
        tracing::info!("board in slot {} released", self.slot + 1);
        Ok(())
    }
}

#[phase(name = "Power on")]
#[measures(input_current: f64 = in_range(0.05, 0.2).units(AMPERE).doc("Current at 5 V"))]
fn power_on(
    test: &mut PhaseContext,
    psu: &mut PowerSupply,
    board: &mut Board,
    m: &mut power_on::Measurements,
) -> Result<(), tofu::Stopped> {
    psu.volts = 5.0;
    test.sleep(Duration::from_millis(400))?;
    m.input_current.set(psu.volts / board.input_ohms);
    psu.volts = 0.0;
    Ok(())
}

/// A picture of what the operator must look at, drawn here (an SVG).
const LED_PICTURE: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="160" height="60"><rect width="160" height="60" fill="#222"/><circle cx="40" cy="30" r="14" fill="#2c2"/><circle cx="80" cy="30" r="14" fill="#2c2"/><circle cx="120" cy="30" r="14" fill="#555"/></svg>"##;

#[phase(name = "LED check")]
#[measures(leds_ok: bool = equals(true))]
fn led_check(m: &mut led_check::Measurements) -> Result<(), tofu::prompt::PromptError> {
    let ok = tofu::prompt::Prompt::new("Do the two left LEDs light green?")
        .image("image/svg+xml", LED_PICTURE.as_bytes())
        .pass_fail()?;
    m.leds_ok.set(ok);
    Ok(())
}

#[phase(name = "IV sweep")]
#[measures(iv: Sweep<2> = dimensions([VOLT, AMPERE]).units(OHM).each(in_range(95, 105)))]
fn iv_sweep(
    test: &mut PhaseContext,
    board: &mut Board,
    m: &mut iv_sweep::Measurements,
) -> Result<(), tofu::Stopped> {
    for i in 1..=60 {
        let v = 0.1 * f64::from(i);
        let ripple = (f64::from(i) / 4.0 + board.slot as f64).sin();
        m.iv.push([v, v / 100.0], 100.0 + 2.0 * ripple);
        test.sleep(board.sweep_pause)?;
    }
    Ok(())
}

#[phase(name = "Rails")]
#[measures(rail_3v3: f64 = in_range(3.2, 3.4).units(VOLT))]
fn check_rails(board: &mut Board, m: &mut check_rails::Measurements) {
    m.rail_3v3.set((3290.0 + 5.0 * board.slot as f64) / 1000.0);
}

fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = match value_after(&args, "--port").map(str::parse) {
        None => 8080,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("--port: {e}");
            return ExitCode::from(2);
        }
    };
    let bind: IpAddr = match value_after(&args, "--bind").map(str::parse) {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(Ok(ip)) => ip,
        Some(Err(e)) => {
            eprintln!("--bind: {e} (an IP address, e.g. 0.0.0.0)");
            return ExitCode::from(2);
        }
    };
    let sweep_pause = Duration::from_millis(
        value_after(&args, "--sweep-ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or(40),
    );
    let records = value_after(&args, "--records").map(std::path::PathBuf::from);

    let mut station = Station::new(4, |slot| {
        let (json, report) = match &records {
            Some(dir) => (
                JsonOutput::to_dir(dir.clone()),
                tofu::report::HtmlReport::to_dir(dir.clone()),
            ),
            None => (JsonOutput::new(), tofu::report::HtmlReport::new()),
        };
        Test::new("FVT-STATION")
            .part_number("PCB01")
            .phases([power_on, led_check, iv_sweep, check_rails])
            .plug(Board {
                slot: slot.index(),
                input_ohms: if slot.index() == 2 { 12.0 } else { 40.0 },
                sweep_pause,
            })
            .json_output(json)
            .output(report)
    })
    .shared_plug(PowerSupply::default());

    let mut page = station.page().bind(SocketAddr::new(bind, port));
    if let Some(token) = value_after(&args, "--token") {
        page = page.token(token);
    }
    if let Some(dir) = &records {
        page = page.records(dir);
    }
    // The page prints its URL (with the token, when one is needed).
    let _page = match page.start() {
        Ok(page) => page,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runs = station.run_continuously(|slot| {
        tofu::prompt::serial_number()
            .message(format!("Scan the board in {slot}"))
            .ask()
    });
    eprintln!("{runs} runs");
    ExitCode::SUCCESS
}
