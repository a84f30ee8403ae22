//! The SCPI layer over TCP: answers, timeouts, blocks, errors, garbage, drops.

use std::time::{Duration, Instant};

use tofu_instruments::InstrumentError;
use tofu_sim::{Fault, FaultRule};

use crate::{connect, serve};

#[test]
fn queries_identify_and_synchronise() {
    let (_sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    let id = dmm.identify().unwrap();
    assert_eq!(
        (
            id.manufacturer.as_str(),
            id.model.as_str(),
            id.serial_number.as_str(),
            id.firmware.as_str()
        ),
        ("TOFU SIM", "DMM-6500", "DMM000421", "1.7.2")
    );
    dmm.wait_complete(Duration::from_secs(1)).unwrap();
    dmm.write("VOLT:DC:RANG 100").unwrap();
    assert_eq!(dmm.query_f64("VOLT:DC:RANG?").unwrap(), 100.0);
    dmm.reset().unwrap();
    assert_eq!(
        dmm.query_f64("VOLT:DC:RANG?").unwrap(),
        10.0,
        "*RST restores the default"
    );
}

#[test]
fn an_instrument_error_names_the_command_and_the_message() {
    let (_sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    match dmm.write("VOLT:DC:RANG 3") {
        Err(InstrumentError::Instrument {
            command,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (command.as_str(), code, message.as_str()),
                ("VOLT:DC:RANG 3", -222, "Data out of range")
            );
        }
        other => panic!("{other:?}"),
    }
    // The queue was drained: the next command is clean.
    dmm.write("VOLT:DC:RANG 1").unwrap();
    match dmm.write("FROB 1") {
        Err(e @ InstrumentError::Instrument { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("`FROB 1`") && msg.contains("Undefined header"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    // With checks off, the error stays in the queue until read.
    dmm.options_mut().check_errors = false;
    dmm.write("FROB 2").unwrap();
    let errors = dmm.errors().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, -113);
}

#[test]
fn an_injected_error_code_fails_the_command_it_follows() {
    let (sim, server) = serve("psu");
    let mut psu = connect(&server);
    sim.inject(
        "psu",
        FaultRule::once_on(
            Fault::Error("-300,\"Device-specific error\"".into()),
            "OUTP",
        ),
    )
    .unwrap();
    psu.write("VOLT 5").unwrap();
    match psu.write("OUTP 1") {
        Err(InstrumentError::Instrument { command, code, .. }) => {
            assert_eq!((command.as_str(), code), ("OUTP 1", -300))
        }
        other => panic!("{other:?}"),
    }
    psu.write("OUTP 1").unwrap();
}

#[test]
fn a_query_without_answer_times_out_at_its_own_timeout_and_the_session_recovers() {
    let (sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    sim.inject("dmm", FaultRule::once_on(Fault::NoAnswer, "MEAS:VOLT:DC?"))
        .unwrap();
    let start = Instant::now();
    match dmm.query_within("MEAS:VOLT:DC?", Duration::from_millis(150)) {
        Err(InstrumentError::Timeout {
            command, timeout, ..
        }) => {
            assert_eq!(
                (command.as_str(), timeout),
                ("MEAS:VOLT:DC?", Duration::from_millis(150))
            );
        }
        other => panic!("{other:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM,DMM-6500"));
}

#[test]
fn a_late_answer_is_thrown_away_not_read_as_the_next_one() {
    let (sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    sim.inject(
        "dmm",
        FaultRule::once_on(Fault::Delay(Duration::from_millis(300)), "VOLT:DC:RANG?"),
    )
    .unwrap();
    assert!(matches!(
        dmm.query_within("VOLT:DC:RANG?", Duration::from_millis(50)),
        Err(InstrumentError::Timeout { .. })
    ));
    std::thread::sleep(Duration::from_millis(400)); // the late answer arrives meanwhile
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM,DMM-6500"));
    // A delay within the timeout is just a slow answer.
    sim.inject(
        "dmm",
        FaultRule::once_on(Fault::Delay(Duration::from_millis(100)), "VOLT:DC:RANG?"),
    )
    .unwrap();
    assert_eq!(dmm.query_f64("VOLT:DC:RANG?").unwrap(), 10.0);
}

#[test]
fn garbage_is_a_bad_answer_naming_the_command() {
    let (sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    sim.inject("dmm", FaultRule::once_on(Fault::Garbage, "MEAS:VOLT:DC?"))
        .unwrap();
    match dmm.query_f64("MEAS:VOLT:DC?") {
        Err(InstrumentError::BadAnswer { command, why, .. }) => {
            assert_eq!(
                (command.as_str(), why.as_str()),
                ("MEAS:VOLT:DC?", "the answer is not text")
            );
        }
        other => panic!("{other:?}"),
    }
    // Text that is not a number.
    sim.inject("dmm", FaultRule::once_on(Fault::Garbage, "*IDN?"))
        .unwrap();
    assert!(matches!(
        dmm.query("*IDN?"),
        Err(InstrumentError::BadAnswer { .. })
    ));
    assert!(
        matches!(dmm.query_f64("*IDN?"), Err(InstrumentError::BadAnswer { why, .. }) if why == "not a number")
    );
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
}

#[test]
fn a_megabyte_block_goes_both_ways() {
    let (sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    let default = dmm.query_block("TRAC:DATA?").unwrap();
    assert_eq!(default.len(), 1 << 20);
    assert!(
        default.contains(&b'\n') && default.contains(&b'#'),
        "the data holds terminator bytes"
    );
    let mine: Vec<u8> = (0..(1usize << 20)).map(|i| (i * 31 % 256) as u8).collect();
    dmm.write_block("TRAC:DATA", &mine).unwrap();
    assert_eq!(
        sim.property("dmm", "trace").unwrap().as_deref(),
        Some("1048576 bytes")
    );
    let back = dmm.query_block("TRAC:DATA?").unwrap();
    assert!(back == mine, "the block came back changed");
    // An empty block, and the session still in step.
    dmm.write_block("TRAC:DATA", &[]).unwrap();
    assert_eq!(dmm.query_block("TRAC:DATA?").unwrap(), Vec::<u8>::new());
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
}

#[test]
fn a_text_answer_is_not_a_block() {
    let (_sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    match dmm.query_block("*IDN?") {
        Err(InstrumentError::BadAnswer { why, .. }) => {
            assert!(why.contains("no leading #"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
}

#[test]
fn a_dropped_connection_is_reopened_once_on_the_next_call() {
    let (sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    dmm.identify().unwrap();
    assert_eq!(sim.drop_connections("dmm").unwrap(), 1);
    std::thread::sleep(Duration::from_millis(50));
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
    assert_eq!(dmm.reconnects(), 1);
    // A drop in the middle of a call is an error naming it (not retried: the instrument may
    // have executed it), and the call after reconnects.
    sim.inject("dmm", FaultRule::once_on(Fault::Drop, "MEAS:VOLT:DC?"))
        .unwrap();
    match dmm.query("MEAS:VOLT:DC?") {
        Err(InstrumentError::ConnectionLost { command, .. }) => {
            assert_eq!(command, "MEAS:VOLT:DC?")
        }
        other => panic!("{other:?}"),
    }
    assert!(dmm.query("*IDN?").unwrap().starts_with("TOFU SIM"));
    assert_eq!(
        dmm.reconnects(),
        1,
        "after a loss mid-call the session reopens as new"
    );
}

#[test]
fn a_server_gone_for_good_is_a_clear_error() {
    let (_sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    let addr = server.addr();
    drop(server);
    std::thread::sleep(Duration::from_millis(50));
    match dmm.query("*IDN?") {
        Err(e @ InstrumentError::Connect { .. }) => {
            assert!(e.to_string().contains(&addr.port().to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_transcript_is_kept_when_asked() {
    let (_sim, server) = serve("psu");
    let mut psu = connect(&server);
    psu.options_mut().keep_transcript = true;
    psu.write("VOLT 5").unwrap();
    let t = psu.take_transcript();
    assert_eq!(t, "> VOLT 5\n> SYST:ERR?\n< +0,\"No error\"\n");
    assert_eq!(psu.take_transcript(), "");
}

#[test]
fn device_clear_throws_away_pending_answers_and_errors() {
    let (_sim, server) = serve("dmm");
    let mut dmm = connect(&server);
    dmm.options_mut().check_errors = false;
    dmm.send("*IDN?").unwrap(); // its answer is never read
    dmm.send("FROB").unwrap(); // an error in the queue
    std::thread::sleep(Duration::from_millis(100));
    dmm.device_clear().unwrap();
    assert_eq!(dmm.query("VOLT:DC:RANG?").unwrap(), "+1.000000000E+01");
    assert_eq!(dmm.errors().unwrap(), []);
}
