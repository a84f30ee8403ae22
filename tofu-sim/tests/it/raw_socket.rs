//! An independent client: raw bytes over a plain socket, answers checked byte for byte.

use std::time::{Duration, Instant};

use tofu_sim::{Fault, FaultRule, Simulator, definite_block};

use crate::Raw;

#[test]
fn answers_raw_bytes_as_an_instrument_does() {
    let sim = Simulator::bench();
    let server = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let mut c = Raw::connect(server.addr());
    assert_eq!(c.ask("*IDN?"), "TOFU SIM,DMM-6500,DMM000421,1.7.2\n");
    // Two messages in one packet, a message split over two packets.
    c.send(b"*OPC?\nVOLT:DC:RANG?\n");
    assert_eq!(c.line(), b"1\n");
    assert_eq!(c.line(), b"+1.000000000E+01\n");
    c.send(b"VOLT:DC:");
    std::thread::sleep(Duration::from_millis(20));
    c.send(b"RANG 100\nVOLT:DC:RANG?\n");
    assert_eq!(c.line(), b"+1.000000000E+02\n");
    // A command gets no answer; errors queue up and drain in order.
    c.send(b"FROB\nVOLT:DC:RANG 5\n");
    assert_eq!(c.ask("SYST:ERR?"), "-113,\"Undefined header\"\n");
    assert_eq!(c.ask("SYST:ERR?"), "-222,\"Data out of range\"\n");
    assert_eq!(c.ask("SYST:ERR?"), "+0,\"No error\"\n");
    c.send(b"FROB\n*CLS\n");
    assert_eq!(c.ask("SYST:ERR?"), "+0,\"No error\"\n");
    // An unknown query is not answered (as instruments do), and queued as an error.
    c.send(b"NOPE?\n");
    assert!(c.silent_for(Duration::from_millis(100)));
    assert_eq!(c.ask("SYST:ERR?"), "-420,\"Query UNTERMINATED\"\n");
}

#[test]
fn blocks_are_definite_length_both_ways() {
    let sim = Simulator::bench();
    let server = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let mut c = Raw::connect(server.addr());
    let data = b"a\nb#3\x00\xff".to_vec();
    let mut msg = b"TRAC:DATA ".to_vec();
    msg.extend(definite_block(&data));
    msg.push(b'\n');
    c.send(&msg);
    assert_eq!(c.ask("SYST:ERR?"), "+0,\"No error\"\n");
    c.send(b"TRAC:DATA?\n");
    let mut got = Vec::new();
    while got.len() < 2 + 1 + data.len() + 1 {
        got.extend(c.line());
    }
    let mut want = definite_block(&data);
    want.push(b'\n');
    assert_eq!(got, want);
    // A block's data may hold the terminator and arrive in pieces.
    c.send(b"TRAC:DATA #15ab\n");
    std::thread::sleep(Duration::from_millis(20));
    c.send(b"cd\n");
    assert_eq!(c.ask("*OPC?"), "1\n");
    assert_eq!(
        sim.property("dmm", "trace").unwrap().as_deref(),
        Some("5 bytes")
    );
}

#[test]
fn the_models_readings_follow_the_settings_across_devices() {
    let sim = Simulator::bench();
    let psu = sim.serve_tcp("psu", "127.0.0.1:0").unwrap();
    let load = sim.serve_tcp("load", "127.0.0.1:0").unwrap();
    let dmm = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let (mut p, mut l, mut d) = (
        Raw::connect(psu.addr()),
        Raw::connect(load.addr()),
        Raw::connect(dmm.addr()),
    );
    assert_eq!(d.ask("MEAS:VOLT:DC?"), "+0.000000000E+00\n", "unpowered");
    p.send(b"VOLT 5\nCURR 2\nOUTP 1\n");
    assert_eq!(p.ask("*OPC?"), "1\n");
    assert_eq!(d.ask("MEAS:VOLT:DC?"), "+3.300000000E+00\n");
    l.send(b"CURR 2\nINP 1\n");
    assert_eq!(l.ask("*OPC?"), "1\n");
    assert_eq!(
        d.ask("MEAS:VOLT:DC?"),
        "+3.260000000E+00\n",
        "droop of 20 mOhm x 2 A"
    );
    let pin: f64 = p.ask("MEAS:CURR?").trim().parse::<f64>().unwrap() * 5.0;
    let pout: f64 = l.ask("MEAS:POW?").trim().parse().unwrap();
    let eff = pout / pin;
    assert!((0.85..0.95).contains(&eff), "efficiency {eff}");
}

#[test]
fn faults_on_demand() {
    let sim = Simulator::bench();
    let server = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let mut c = Raw::connect(server.addr());
    sim.inject(
        "dmm",
        FaultRule::once_on(Fault::Delay(Duration::from_millis(200)), "*IDN?"),
    )
    .unwrap();
    let t = Instant::now();
    assert!(c.ask("*IDN?").starts_with("TOFU SIM"));
    assert!(t.elapsed() >= Duration::from_millis(200));
    sim.inject("dmm", FaultRule::once(Fault::Garbage)).unwrap();
    c.send(b"*IDN?\n");
    assert_eq!(c.line(), b"\xff\xfe\x00garbage\x9d\n");
    sim.inject("dmm", FaultRule::once(Fault::NoAnswer)).unwrap();
    c.send(b"*IDN?\n");
    assert!(c.silent_for(Duration::from_millis(100)));
    sim.inject(
        "dmm",
        FaultRule::once(Fault::Error("-350,\"Queue overflow\"".into())),
    )
    .unwrap();
    assert!(c.ask("*IDN?").starts_with("TOFU SIM"));
    assert_eq!(c.ask("SYST:ERR?"), "-350,\"Queue overflow\"\n");
    sim.inject("dmm", FaultRule::once(Fault::Drop)).unwrap();
    c.send(b"*IDN?\n");
    assert!(c.closed());
    // The server still listens; the fault was used up.
    let mut again = Raw::connect(server.addr());
    assert!(again.ask("*IDN?").starts_with("TOFU SIM"));
    assert_eq!(sim.drop_connections("dmm").unwrap(), 1);
    assert!(again.closed());
}

#[test]
fn devices_are_named_in_errors() {
    let sim = Simulator::bench();
    let err = sim
        .serve_tcp("scope", "127.0.0.1:0")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`scope`") && err.contains("dmm, load, psu"),
        "{err}"
    );
}

#[test]
fn closed_connections_are_forgotten() {
    let sim = Simulator::bench();
    let server = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let mut clients: Vec<Raw> = (0..3).map(|_| Raw::connect(server.addr())).collect();
    for c in &mut clients {
        assert!(c.ask("*IDN?").starts_with("TOFU SIM"));
    }
    clients.truncate(1); // two clients hang up
    std::thread::sleep(Duration::from_millis(300)); // their server threads see the close
    assert_eq!(
        sim.drop_connections("dmm").unwrap(),
        1,
        "only the open one is left"
    );
}
