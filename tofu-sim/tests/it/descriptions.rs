//! Descriptions in pyvisa-sim's format: the forms it documents work, mistakes are named.

use std::time::Duration;

use tofu_sim::Simulator;

use crate::Raw;

/// pyvisa-sim's documented forms: `error` as one answer, a status register, setters with
/// their own error answer, `valid` lists, `{:d}`/`{:s}`/`{:.2f}` formats, RANDOM, `*RST`
/// without answer, `\r\n` terminators for serial.
const PYVISA_SIM_STYLE: &str = r#"
spec: "1.0"
devices:
  device 1:
    eom:
      ASRL INSTR:
        q: "\r\n"
        r: "\n"
      TCPIP SOCKET:
        q: "\n"
        r: "\n"
    error: ERROR
    dialogues:
      - q: "?IDN"
        r: "LSG Serial #1234"
      - q: "!CAL"
        r: OK
      - q: "*RST"
      - q: ":READ?"
        r: "{RANDOM(0, 10.5, 3):.2f}"
    properties:
      frequency:
        default: 100.0
        getter:
          q: "?FREQ"
          r: "{:.2f}"
        setter:
          q: "!FREQ {:.2f}"
          r: OK
          e: 'FREQ_ERROR'
        specs:
          min: 1
          max: 100000
          type: float
      output_enabled:
        default: 0
        getter:
          q: "?OUT"
          r: "{:d}"
        setter:
          q: "!OUT {:d}"
          r: OK
        specs:
          valid: [0, 1]
          type: int
      rail:
        default: P6V
        getter:
          q: "INST?"
          r: "{:s}"
        setter:
          q: "INST {:s}"
          r: OK
        specs:
          valid: ["P6V", "P25V"]
          type: str
  device 2:
    dialogues:
      - q: "*IDN?"
        r: "SCPI,MOCK,VERSION_1.0"
    error:
      response:
        command_error: "INVALID_COMMAND"
      status_register:
        - q: "*ESR?"
          command_error: 32
          query_error: 4
resources:
  TCPIP::localhost::10001::SOCKET:
    device: device 1
"#;

#[test]
fn pyvisa_sim_descriptions_work() {
    let sim = Simulator::from_yaml(PYVISA_SIM_STYLE).unwrap();
    assert_eq!(sim.devices(), ["device 1", "device 2"]);
    assert_eq!(
        sim.resources(),
        [(
            "TCPIP::localhost::10001::SOCKET".to_owned(),
            "device 1".to_owned()
        )]
    );
    let one = sim.serve_tcp("device 1", "127.0.0.1:0").unwrap();
    let mut c = Raw::connect(one.addr());
    assert_eq!(c.ask("?IDN"), "LSG Serial #1234\n");
    assert_eq!(c.ask("?FREQ"), "100.00\n");
    assert_eq!(c.ask("!FREQ 12.5"), "OK\n");
    assert_eq!(c.ask("?FREQ"), "12.50\n");
    assert_eq!(c.ask("!FREQ 0"), "FREQ_ERROR\n");
    assert_eq!(c.ask("!OUT 2"), "ERROR\n");
    assert_eq!(c.ask("!OUT 1"), "OK\n");
    assert_eq!(c.ask("?OUT"), "1\n");
    assert_eq!(c.ask("INST P25V"), "OK\n");
    assert_eq!(c.ask("INST?"), "P25V\n");
    assert_eq!(c.ask("INST N25V"), "ERROR\n");
    assert_eq!(c.ask("BOGUS"), "ERROR\n");
    let reading = c.ask(":READ?");
    let values: Vec<f64> = reading
        .trim()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        values.len() == 3 && values.iter().all(|v| (0.0..=10.5).contains(v)),
        "{reading}"
    );
    c.send(b"*RST\n");
    assert_eq!(c.ask("?FREQ"), "100.00\n", "*RST restores the defaults");
    let two = sim.serve_tcp("device 2", "127.0.0.1:0").unwrap();
    let mut d = Raw::connect(two.addr());
    assert_eq!(d.ask("WHAT"), "INVALID_COMMAND\n");
    assert_eq!(d.ask("*ESR?"), "32\n");
    assert_eq!(d.ask("*ESR?"), "0\n", "reading the register clears it");
}

#[cfg(unix)]
#[test]
fn serial_terminators_come_from_the_description() {
    let sim = Simulator::from_yaml(PYVISA_SIM_STYLE).unwrap();
    let pty = sim.serve_pty("device 1").unwrap();
    let answer = crate::ask_serial(pty.path(), 9600, b"?IDN\r\n");
    assert_eq!(answer, b"LSG Serial #1234\n");
}

#[test]
fn faults_from_the_description() {
    let yaml = r#"
devices:
  dmm:
    dialogues:
      - q: "*IDN?"
        r: "A,B,C,D"
    faults:
      - {kind: delay, ms: 150, on: "*IDN?", times: 1}
"#;
    let sim = Simulator::from_yaml(yaml).unwrap();
    let server = sim.serve_tcp("dmm", "127.0.0.1:0").unwrap();
    let mut c = Raw::connect(server.addr());
    let t = std::time::Instant::now();
    assert_eq!(c.ask("*IDN?"), "A,B,C,D\n");
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = std::time::Instant::now();
    assert_eq!(c.ask("*IDN?"), "A,B,C,D\n");
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "the fault was used once"
    );
}

#[test]
fn mistakes_are_named() {
    let cases = [
        ("devices: [", "description <text>"),
        (
            "devices:\n  d:\n    properties:\n      v:\n        default: 1\n        specs: {type: complex}\n",
            "property `v`: type `complex`",
        ),
        (
            "devices:\n  d:\n    properties:\n      v:\n        default: x\n        specs: {type: float}\n",
            "property `v`: default",
        ),
        (
            "devices:\n  d:\n    properties:\n      v:\n        default: 1\n        setter: {q: \"V\"}\n",
            "exactly one `{}` field",
        ),
        (
            "devices:\n  d:\n    dialogues:\n      - {q: \"A\", r: \"{:.2q}\"}\n",
            "format spec `.2q`",
        ),
        (
            "devices:\n  d:\n    channels: {}\n",
            "`channels` are not supported",
        ),
        (
            "devices:\n  d: {}\nresources:\n  ASRL1::INSTR: {device: e}\n",
            "there is no device `e`",
        ),
        (
            "devices:\n  d:\n    faults: [{kind: explode}]\n",
            "unknown fault `explode`",
        ),
    ];
    for (yaml, want) in cases {
        let err = Simulator::from_yaml(yaml).unwrap_err().to_string();
        assert!(err.contains(want), "{yaml:?}: {err}");
    }
}

#[test]
fn the_shipped_bench_is_valid_and_listed() {
    let sim = Simulator::from_yaml(tofu_sim::BENCH_YAML).unwrap();
    assert_eq!(sim.devices(), ["dmm", "load", "psu"]);
    assert_eq!(sim.resources().len(), 3);
}
