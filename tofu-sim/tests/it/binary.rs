//! The `tofu-sim` command, started as a real process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::Raw;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tofu-sim ARGS` and reads the lines it prints for each served device.
fn start(args: &[&str], served: usize) -> (Running, Vec<(String, String)>) {
    let child = Command::new(env!("CARGO_BIN_EXE_tofu-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    for _ in 0..served {
        let line = lines.next().unwrap().unwrap();
        let (device, address) = line.split_once(' ').unwrap();
        out.push((device.to_owned(), address.to_owned()));
    }
    (running, out)
}

fn port_of(resource: &str) -> u16 {
    resource.split("::").nth(2).unwrap().parse().unwrap()
}

#[test]
fn listen_alone_serves_the_dmm_and_answers_idn() {
    let (_p, served) = start(&["--listen", "127.0.0.1:0"], 1);
    assert_eq!(served[0].0, "dmm");
    let mut c = Raw::connect(("127.0.0.1", port_of(&served[0].1)));
    assert_eq!(c.ask("*IDN?"), "TOFU SIM,DMM-6500,DMM000421,1.7.2\n");
}

#[test]
fn several_devices_share_one_bench_and_faults_come_from_the_command_line() {
    let (_p, served) = start(
        &[
            "--listen",
            "psu=127.0.0.1:0",
            "--listen",
            "dmm=127.0.0.1:0",
            "--fault",
            "dmm:garbage,on=*IDN?,times=1",
        ],
        2,
    );
    let mut psu = Raw::connect(("127.0.0.1", port_of(&served[0].1)));
    let mut dmm = Raw::connect(("127.0.0.1", port_of(&served[1].1)));
    psu.send(b"VOLT 12\nOUTP 1\n");
    assert_eq!(psu.ask("*OPC?"), "1\n");
    assert_eq!(dmm.ask("MEAS:VOLT:DC?"), "+3.300000000E+00\n");
    dmm.send(b"*IDN?\n");
    assert_eq!(dmm.line(), b"\xff\xfe\x00garbage\x9d\n");
    assert!(dmm.ask("*IDN?").starts_with("TOFU SIM,DMM-6500"));
}

#[cfg(unix)]
#[test]
fn serves_a_pseudo_terminal() {
    let (_p, served) = start(&["--pty", "load"], 1);
    let answer = crate::ask_serial(&served[0].1, 115_200, b"*IDN?\n");
    assert_eq!(answer, b"TOFU SIM,ELOAD-8500,LD0000093,3.0.4\n");
}

#[test]
fn help_and_bad_arguments() {
    let help = Command::new(env!("CARGO_BIN_EXE_tofu-sim"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(help.status.success());
    for word in [
        "--listen",
        "--pty",
        "--description",
        "--fault",
        "--resources",
    ] {
        assert!(text.contains(word), "{word} not in --help");
    }
    let cases: &[(&[&str], &str)] = &[
        (&[], "nothing to serve"),
        (&["--listen"], "--listen needs a value"),
        (&["--bogus"], "unknown argument `--bogus`"),
        (&["--listen", "scope=127.0.0.1:0"], "no device `scope`"),
        (
            &["--fault", "dmm:explode", "--listen", "127.0.0.1:0"],
            "unknown fault `explode`",
        ),
        (
            &[
                "--description",
                "/nonexistent/bench.yaml",
                "--listen",
                "127.0.0.1:0",
            ],
            "/nonexistent/bench.yaml",
        ),
        (&["--listen", "127.0.0.1:99999"], "127.0.0.1:99999"),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tofu-sim"))
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn resources_serves_each_socket_resource_of_a_description_at_its_address() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    let yaml = format!(
        "devices:\n  meter:\n    dialogues:\n      - q: \"*IDN?\"\n        r: \"ME,METER,1,2\"\nresources:\n  TCPIP::127.0.0.1::{port}::SOCKET:\n    device: meter\n  ASRL1::INSTR:\n    device: meter\n"
    );
    std::fs::write(&path, yaml).unwrap();
    let (_p, served) = start(&["--description", path.to_str().unwrap(), "--resources"], 1);
    assert_eq!(
        served[0],
        (
            "meter".to_owned(),
            format!("TCPIP::127.0.0.1::{port}::SOCKET")
        )
    );
    let mut c = Raw::connect(("127.0.0.1", port));
    assert_eq!(c.ask("*IDN?"), "ME,METER,1,2\n");
}
