//! `tofu-sim`: serves simulated SCPI instruments until stopped (Ctrl-C or a signal).

use std::process::ExitCode;

use tofu_sim::{FaultRule, Simulator};

const HELP: &str = "\
tofu-sim: simulated SCPI instruments over TCP and pseudo-terminals

USAGE:
    tofu-sim [OPTIONS]

With no description, serves tofu's bench (devices dmm, psu, load around a simulated DC-DC
converter). `tofu-sim --listen 127.0.0.1:5025` serves its DMM on that port.

OPTIONS:
    --description FILE       a description in pyvisa-sim's YAML format (default: tofu's bench)
    --listen [DEVICE=]ADDR   serve DEVICE on the TCP address ADDR (port 0: any free port);
                             without DEVICE=, the bench's dmm or the description's first device
                             (by name); repeat for more devices
    --pty DEVICE             serve DEVICE on a new pseudo-terminal (a serial port; its path is
                             printed)
    --resources              serve every `TCPIP::HOST::PORT::SOCKET` resource of the description
                             at its address
    --fault DEVICE:FAULT     inject a fault: FAULT is KIND[,on=COMMAND][,times=N] with KIND one of
                             delay=500ms, no-answer, garbage, drop, error=-222,\"Data out of range\"
                             (on=: only messages starting with COMMAND; times=: how many)
    --list                   print the description's devices and resources, and exit
    -h, --help               this help

Each served device is printed as `DEVICE ADDRESS` (ADDRESS: TCPIP::HOST::PORT::SOCKET or a
terminal's path), then the simulator runs until it is stopped.

EXAMPLES:
    tofu-sim --listen 127.0.0.1:5025
    tofu-sim --listen dmm=127.0.0.1:5025 --listen psu=127.0.0.1:5026 --listen load=127.0.0.1:5027
    tofu-sim --pty dmm --fault 'dmm:delay=300ms,on=MEAS:VOLT:DC?,times=1'
    tofu-sim --description my_instruments.yaml --resources
";

#[derive(Debug, Default)]
struct Args {
    description: Option<String>,
    listen: Vec<(Option<String>, String)>,
    pty: Vec<String>,
    resources: bool,
    faults: Vec<(String, FaultRule)>,
    list: bool,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args::default();
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| {
            argv.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--description" => args.description = Some(value("--description")?),
            "--listen" => {
                let v = value("--listen")?;
                args.listen.push(match v.split_once('=') {
                    Some((d, a)) => (Some(d.to_owned()), a.to_owned()),
                    None => (None, v),
                });
            }
            "--pty" => args.pty.push(value("--pty")?),
            "--resources" => args.resources = true,
            "--list" => args.list = true,
            "--fault" => {
                let v = value("--fault")?;
                let (device, spec) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--fault `{v}`: write DEVICE:FAULT, e.g. dmm:drop"))?;
                let rule = FaultRule::parse(spec).map_err(|e| format!("--fault {v}: {e}"))?;
                args.faults.push((device.to_owned(), rule));
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(Some(args))
}

/// `TCPIP::HOST::PORT::SOCKET` (or `TCPIP0::…`) → `HOST:PORT`.
fn socket_address(resource: &str) -> Option<String> {
    let parts: Vec<&str> = resource.split("::").collect();
    match parts.as_slice() {
        [board, host, port, kind]
            if board.to_ascii_uppercase().starts_with("TCPIP")
                && kind.eq_ignore_ascii_case("SOCKET") =>
        {
            Some(format!("{host}:{port}"))
        }
        _ => None,
    }
}

fn run(args: Args) -> Result<(), String> {
    let sim = match &args.description {
        Some(path) => Simulator::from_file(path).map_err(|e| e.to_string())?,
        None => Simulator::bench(),
    };
    if args.list {
        println!("devices: {}", sim.devices().join(", "));
        for (resource, device) in sim.resources() {
            println!("{resource} -> {device}");
        }
        return Ok(());
    }
    for (device, rule) in args.faults {
        sim.inject(&device, rule).map_err(|e| e.to_string())?;
    }
    let default_device = if args.description.is_none() {
        "dmm".to_owned()
    } else {
        sim.devices().into_iter().next().unwrap_or_default()
    };
    let mut tcp = Vec::new();
    let mut listen = args.listen;
    if args.resources {
        for (resource, device) in sim.resources() {
            if let Some(addr) = socket_address(resource) {
                listen.push((Some(device.clone()), addr));
            }
        }
    }
    if listen.is_empty() && args.pty.is_empty() {
        return Err(
            "nothing to serve: give --listen ADDR, --pty DEVICE or --resources (see --help)".into(),
        );
    }
    for (device, addr) in listen {
        let device = device.unwrap_or_else(|| default_device.clone());
        let server = sim.serve_tcp(&device, &addr).map_err(|e| e.to_string())?;
        println!("{device} {}", server.resource());
        tcp.push(server);
    }
    #[cfg(unix)]
    let mut ptys = Vec::new();
    for device in args.pty {
        #[cfg(unix)]
        {
            let server = sim.serve_pty(&device).map_err(|e| e.to_string())?;
            println!("{device} {}", server.path());
            ptys.push(server);
        }
        #[cfg(not(unix))]
        return Err(format!(
            "--pty {device}: pseudo-terminals need a unix system"
        ));
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(None) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tofu-sim: {e}");
                ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("tofu-sim: {e}");
            ExitCode::from(2)
        }
    }
}
