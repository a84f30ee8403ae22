//! SCPI over a serial port: the simulator on a real pseudo-terminal.

use std::time::Duration;

use tofu_instruments::{Address, InstrumentError, Scpi, ScpiOptions};
use tofu_sim::{Fault, FaultRule, Simulator};

fn open(path: &str) -> Scpi {
    let address = Address::parse(&format!("serial://{path}?baud=115200")).unwrap();
    let options = ScpiOptions {
        timeout: Duration::from_millis(500),
        ..ScpiOptions::default()
    };
    Scpi::connect("dmm", &address, options).unwrap()
}

#[test]
fn scpi_over_a_pseudo_terminal() {
    let sim = Simulator::bench();
    let pty = sim.serve_pty("dmm").unwrap();
    let mut dmm = open(pty.path());
    assert_eq!(dmm.identify().unwrap().serial_number, "DMM000421");
    match dmm.write("VOLT:DC:RANG 7") {
        Err(InstrumentError::Instrument { code, .. }) => assert_eq!(code, -222),
        other => panic!("{other:?}"),
    }
    // A block with every byte value, terminators included, through the terminal.
    let data: Vec<u8> = (0..65_536u32).map(|i| (i % 256) as u8).collect();
    dmm.write_block("TRAC:DATA", &data).unwrap();
    assert!(dmm.query_block("TRAC:DATA?").unwrap() == data);
}

#[test]
fn a_silent_serial_instrument_times_out() {
    let sim = Simulator::bench();
    let pty = sim.serve_pty("dmm").unwrap();
    let mut dmm = open(pty.path());
    sim.inject("dmm", FaultRule::once_on(Fault::NoAnswer, "*IDN?"))
        .unwrap();
    assert!(matches!(
        dmm.query_within("*IDN?", Duration::from_millis(200)),
        Err(InstrumentError::Timeout { .. })
    ));
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
}

#[test]
fn a_missing_port_is_a_connect_error_naming_it() {
    let address = Address::parse("serial:///dev/tofu-no-such-port?baud=9600").unwrap();
    match Scpi::connect("dmm", &address, ScpiOptions::default()) {
        Err(e @ InstrumentError::Connect { .. }) => {
            assert!(e.to_string().contains("/dev/tofu-no-such-port"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
