//! Several units at once on one station: slots run side by side, a shared plug is held by one
//! phase at a time, synchronized slots keep the phase order, and what happens in one slot
//! stays in it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tofu_core::prelude::*;
use tofu_core::record::PhaseRecord;
use tofu_core::station::{Batch, SlotMode};
use tofu_core::{Outcome, PhaseOutcome, TestRecord};

/// An instrument that notices when two phases use it at once.
#[derive(Default, Clone)]
struct Instrument {
    users: Arc<AtomicUsize>,
    most_users: Arc<AtomicUsize>,
    setups: Arc<AtomicUsize>,
    teardowns: Arc<AtomicUsize>,
}

impl Instrument {
    fn measure(&self, how_long: Duration) -> f64 {
        let users = self.users.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_users.fetch_max(users, Ordering::SeqCst);
        std::thread::sleep(how_long);
        self.users.fetch_sub(1, Ordering::SeqCst);
        1.0
    }
}

impl Plug for Instrument {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.setups.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.teardowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// What a slot's board does wrong, if anything.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    Panic,
    Hang,
    Fail,
}

/// One slot's board.
struct Board {
    fault: Fault,
    /// How long each phase of this slot takes.
    pace: Duration,
    torn_down: Arc<AtomicUsize>,
}

impl Plug for Board {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.torn_down.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[phase]
fn sleep_a_second() {
    std::thread::sleep(Duration::from_secs(1));
}

#[phase]
#[measures(level: f64 = in_range(0.5, 1.5))]
fn use_instrument(instrument: &mut Instrument, m: &mut use_instrument::Measurements) {
    m.level.set(instrument.measure(Duration::from_millis(100)));
}

#[phase]
fn step_one(board: &mut Board) {
    std::thread::sleep(board.pace);
}

#[phase]
fn step_two(board: &mut Board) {
    std::thread::sleep(board.pace);
}

#[phase]
fn step_three(board: &mut Board) {
    std::thread::sleep(board.pace);
}

#[phase(timeout_s = 0.5)]
#[measures(ok: bool = equals(true))]
fn misbehave(board: &mut Board, m: &mut misbehave::Measurements) {
    match board.fault {
        Fault::None => m.ok.set(true),
        Fault::Fail => m.ok.set(false),
        Fault::Panic => panic!("the board in this slot shorted"),
        Fault::Hang => std::thread::sleep(Duration::from_secs(30)),
    }
}

fn board(fault: Fault, pace: Duration) -> Board {
    Board {
        fault,
        pace,
        torn_down: Arc::default(),
    }
}

fn quiet_test(dir: &std::path::Path) -> Test {
    Test::new("STATION")
        .json_output(JsonOutput::to_dir(dir))
        .quiet()
}

fn serials(station: &mut Station) -> Batch {
    station.run(|slot| format!("SN-{}", slot.index() + 1))
}

fn phase<'r>(record: &'r TestRecord, name: &str) -> &'r PhaseRecord {
    record
        .phases
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no phase {name} in {}", record.dut_id))
}

#[test]
fn four_slots_run_side_by_side_each_with_its_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(4, |_| {
        quiet_test(dir.path()).phases([sleep_a_second, sleep_a_second])
    })
    .quiet();
    let started = Instant::now();
    let batch = serials(&mut station);
    let elapsed = started.elapsed();

    assert!(batch.passed());
    let records: Vec<&TestRecord> = batch.executions.iter().map(|e| &e.record).collect();
    // Each slot's phases overlap every other slot's: they ran at the same time, not in turn.
    let latest_start = records
        .iter()
        .map(|r| r.phases[0].start_time_millis)
        .max()
        .unwrap();
    let earliest_end = records
        .iter()
        .map(|r| r.phases[0].end_time_millis)
        .min()
        .unwrap();
    assert!(latest_start < earliest_end, "slots ran one after another");
    // Four slots of two seconds take about two seconds, not eight.
    let one_slot = Duration::from_millis(records[0].duration_millis() as u64);
    assert!(
        elapsed < one_slot * 2,
        "{elapsed:?} for slots of {one_slot:?}"
    );

    // One record per slot, each naming its slot and unit, all of one execution.
    for (i, record) in records.iter().enumerate() {
        let slot = record.slot.as_ref().unwrap();
        assert_eq!(
            (slot.index, slot.name.as_str()),
            (i, &*format!("slot {}", i + 1))
        );
        assert_eq!(record.dut_id, format!("SN-{}", i + 1));
        assert_eq!(
            slot.execution_id,
            records[0].slot.as_ref().unwrap().execution_id
        );
    }
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    for (i, file) in files.iter().enumerate() {
        assert!(
            file.starts_with(&format!("SN-{}.STATION.", i + 1)),
            "{file}"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(file)).unwrap()).unwrap();
        assert_eq!(json["slot"]["index"], i);
        assert_eq!(json["slot"]["name"], format!("slot {}", i + 1));
    }
}

#[test]
fn a_shared_plug_is_used_by_one_slot_at_a_time_and_the_wait_is_recorded_not_timed() {
    let dir = tempfile::tempdir().unwrap();
    let instrument = Instrument::default();
    // The instrument takes 100 ms a phase: the last of 4 slots waits ~300 ms, more than the
    // phase's timeout of 250 ms, which must not count the wait.
    let mut station = Station::new(4, |_| {
        quiet_test(dir.path())
            .phases([use_instrument, use_instrument])
            .phase_timeout(Duration::from_millis(250))
    })
    .shared_plug(instrument.clone())
    .quiet();
    let batch = serials(&mut station);

    for e in &batch.executions {
        assert_eq!(
            e.record.outcome,
            Outcome::Pass,
            "{:?}",
            e.record.outcome_details
        );
    }
    assert_eq!(
        instrument.most_users.load(Ordering::SeqCst),
        1,
        "two slots used it at once"
    );
    // Set up and torn down once for the station, not once per slot.
    assert_eq!(instrument.setups.load(Ordering::SeqCst), 1);
    assert_eq!(instrument.teardowns.load(Ordering::SeqCst), 1);

    // In the records: no two phases that hold the instrument overlap, and some waited.
    let mut held: Vec<(i64, i64)> = batch
        .executions
        .iter()
        .flat_map(|e| e.record.phases.iter())
        .map(|p| (p.start_time_millis, p.end_time_millis))
        .collect();
    held.sort();
    for pair in held.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "phases overlap: {pair:?}");
    }
    let waits: Vec<i64> = batch
        .executions
        .iter()
        .flat_map(|e| e.record.phases.iter())
        .map(|p| p.plug_wait_millis.unwrap())
        .collect();
    assert!(waits.iter().filter(|&&w| w >= 90).count() >= 3, "{waits:?}");
}

#[test]
fn a_panic_a_timeout_or_a_failure_in_one_slot_changes_nothing_in_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let faults = [
        Fault::None,
        Fault::Panic,
        Fault::Hang,
        Fault::Fail,
        Fault::None,
    ];
    let boards: Vec<Arc<AtomicUsize>> = faults.iter().map(|_| Arc::default()).collect();
    let mut station = Station::new(faults.len(), |slot| {
        let mut b = board(faults[slot.index()], Duration::from_millis(10));
        b.torn_down = Arc::clone(&boards[slot.index()]);
        quiet_test(dir.path())
            .phases([step_one, misbehave, step_two])
            .plug(b)
    })
    .quiet();
    let batch = serials(&mut station);

    let outcomes: Vec<Outcome> = batch.executions.iter().map(|e| e.record.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Pass,
            Outcome::Error,
            Outcome::Timeout,
            Outcome::Fail,
            Outcome::Pass
        ]
    );
    for i in [0, 4] {
        let record = &batch.executions[i].record;
        assert_eq!(record.phases.len(), 3);
        assert!(
            record
                .phases
                .iter()
                .all(|p| p.outcome == PhaseOutcome::Pass)
        );
    }
    // Every slot tore its board down once and wrote its record; but the board of the slot
    // whose phase hangs is still held by that phase, so its teardown is skipped (and logged).
    let torn_down: Vec<usize> = boards.iter().map(|b| b.load(Ordering::SeqCst)).collect();
    assert_eq!(torn_down, [1, 1, 0, 1, 1]);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), faults.len(), "{files:?}");
}

/// Each phase's (start, end) in each slot, by phase name.
fn spans(batch: &Batch, name: &str) -> Vec<(i64, i64)> {
    batch
        .executions
        .iter()
        .map(|e| {
            let p = phase(&e.record, name);
            (p.start_time_millis, p.end_time_millis)
        })
        .collect()
}

fn paced_station(dir: &std::path::Path, mode: SlotMode) -> Station {
    // Slot 1 is slow, the others quick.
    Station::new(3, |slot| {
        let pace = Duration::from_millis(if slot.index() == 0 { 150 } else { 10 });
        quiet_test(dir)
            .phases([step_one, step_two, step_three])
            .plug(board(Fault::None, pace))
    })
    .mode(mode)
    .quiet()
}

#[test]
fn synchronized_slots_all_finish_a_phase_before_any_starts_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let batch = serials(&mut paced_station(dir.path(), SlotMode::Synchronized));
    assert!(batch.passed());
    let names = ["step_one", "step_two", "step_three"];
    for pair in names.windows(2) {
        let last_end = spans(&batch, pair[0]).iter().map(|s| s.1).max().unwrap();
        let first_start = spans(&batch, pair[1]).iter().map(|s| s.0).min().unwrap();
        assert!(
            last_end <= first_start,
            "{} started at {first_start} before {} ended at {last_end}",
            pair[1],
            pair[0]
        );
    }

    // Independent slots don't wait: the quick ones are done before the slow one's first
    // phase ends.
    let batch = serials(&mut paced_station(dir.path(), SlotMode::Independent));
    let slow_first_end = spans(&batch, "step_one")[0].1;
    let quick_last_start = spans(&batch, "step_three")[1].0;
    assert!(quick_last_start < slow_first_end);
}

/// Issue #13: a slot with no board in it (`None`) makes no run: no UNKNOWN_DUT record to
/// upload as a fake unit. Synchronized slots don't wait for it.
#[test]
fn a_slot_given_no_unit_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [SlotMode::Independent, SlotMode::Synchronized] {
        let mut station = paced_station(dir.path(), mode);
        let batch = station.run(|slot| (slot.index() != 1).then(|| format!("SN-{}", slot.index())));
        let serials: Vec<&str> = batch
            .executions
            .iter()
            .map(|e| e.record.dut_id.as_str())
            .collect();
        assert_eq!(serials, ["SN-0", "SN-2"], "{mode:?}");
        assert!(batch.passed());
        let slots: Vec<usize> = batch
            .executions
            .iter()
            .map(|e| e.record.slot.as_ref().unwrap().index)
            .collect();
        assert_eq!(slots, [0, 2]);
    }
    let records: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(
        !records.iter().any(|r| r.contains("UNKNOWN_DUT")),
        "{records:?}"
    );
}

#[test]
fn synchronized_slots_go_on_when_one_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(3, |slot| {
        let fault = if slot.index() == 1 {
            Fault::Panic
        } else {
            Fault::None
        };
        quiet_test(dir.path())
            .phases([step_one, misbehave, step_two])
            .plug(board(fault, Duration::from_millis(10)))
    })
    .synchronized()
    .quiet();
    let batch = serials(&mut station);
    let outcomes: Vec<Outcome> = batch.executions.iter().map(|e| e.record.outcome).collect();
    assert_eq!(outcomes, [Outcome::Pass, Outcome::Error, Outcome::Pass]);
    assert_eq!(batch.executions[0].record.phases.len(), 3);
}

#[test]
fn the_station_runs_batch_after_batch_with_the_same_plugs() {
    let dir = tempfile::tempdir().unwrap();
    let instrument = Instrument::default();
    let boards: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::default()).collect();
    let mut station = Station::with_slot_names(["A1", "A2"], |slot| {
        let mut b = board(Fault::None, Duration::ZERO);
        b.torn_down = Arc::clone(&boards[slot.index()]);
        quiet_test(dir.path())
            .phases([step_one, use_instrument])
            .plug(b)
    })
    .shared_plug(instrument.clone())
    .quiet();
    let names: Vec<&str> = station.slots().map(|s| s.name()).collect();
    assert_eq!(names, ["A1", "A2"]);

    let mut executions = Vec::new();
    for batch in 1..=3 {
        let result = station.run(|slot| format!("B{batch}-{}", slot.name()));
        assert!(result.passed());
        executions.extend(result.executions);
    }
    let units: Vec<&str> = executions
        .iter()
        .map(|e| e.record.dut_id.as_str())
        .collect();
    assert_eq!(
        units,
        ["B1-A1", "B1-A2", "B2-A1", "B2-A2", "B3-A1", "B3-A2"]
    );
    // Each batch is an execution of its own.
    let ids: std::collections::HashSet<&str> = executions
        .iter()
        .map(|e| e.record.slot.as_ref().unwrap().execution_id.as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    // The shared plug's life cycle is the batch's; the slots' plugs, the run's.
    assert_eq!(instrument.setups.load(Ordering::SeqCst), 3);
    assert_eq!(instrument.teardowns.load(Ordering::SeqCst), 3);
    assert!(boards.iter().all(|b| b.load(Ordering::SeqCst) == 3));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 6);
}

/// A supply whose setup fails.
struct DeadSupply;

impl Plug for DeadSupply {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("no answer on /dev/ttyUSB0".into())
    }
}

#[phase]
fn use_dead_supply(_supply: &mut DeadSupply) {}

#[test]
fn a_shared_plug_that_fails_to_set_up_makes_every_slot_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(2, |_| quiet_test(dir.path()).phases([use_dead_supply]))
        .shared_plug(DeadSupply)
        .quiet();
    let batch = serials(&mut station);
    for e in &batch.executions {
        assert_eq!(e.record.outcome, Outcome::Error);
        assert!(e.record.phases.is_empty());
        let detail = &e.record.outcome_details[0];
        assert_eq!(detail.code, "PlugSetupError");
        assert!(
            detail.description.contains("DeadSupply") && detail.description.contains("ttyUSB0"),
            "{}",
            detail.description
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// A station's instrument: its identity (here, which setup it is) read at setup.
#[derive(Default)]
struct IdentifiedMeter {
    setups: usize,
    dead: bool,
}

impl Plug for IdentifiedMeter {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.setups += 1;
        if self.dead {
            return Err("no answer on 192.168.1.20:5025".into());
        }
        Ok(())
    }

    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        let entry = serde_json::json!({"name": "meter", "setup": self.setups});
        vec![("instruments".to_owned(), entry)]
    }
}

/// A slot's own instrument.
struct SlotMeter(usize);

impl Plug for SlotMeter {
    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        let entry = serde_json::json!({"name": "dmm", "slot": self.0});
        vec![("instruments".to_owned(), entry)]
    }
}

#[phase]
fn hold_the_meter(_meter: &mut IdentifiedMeter, _dmm: &mut SlotMeter) {
    std::thread::sleep(Duration::from_millis(100));
}

/// The shared plugs' entries (instruments' identities) are in every slot's record, after the
/// slot's own, as they were after the batch's setup: also for a slot whose record is made
/// while another slot holds the shared plug.
#[test]
fn every_slots_record_lists_the_shared_plugs_entries_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(3, |slot| {
        quiet_test(dir.path())
            .phases([hold_the_meter])
            .plug(SlotMeter(slot.index()))
    })
    .shared_plug(IdentifiedMeter::default())
    .quiet();
    for batch in 1..=2 {
        let executions = serials(&mut station).executions;
        assert_eq!(executions.len(), 3);
        for e in &executions {
            let slot = e.record.slot.as_ref().map(|s| s.index);
            assert_eq!(
                e.record.metadata.extra["instruments"],
                serde_json::json!([
                    {"name": "dmm", "slot": slot},
                    {"name": "meter", "setup": batch}
                ]),
                "batch {batch}"
            );
        }
    }
}

/// A shared instrument that failed its setup is still named in every slot's record.
#[test]
fn a_shared_plug_that_failed_to_set_up_is_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(2, |slot| {
        quiet_test(dir.path())
            .phases([hold_the_meter])
            .plug(SlotMeter(slot.index()))
    })
    .shared_plug(IdentifiedMeter {
        dead: true,
        ..Default::default()
    })
    .quiet();
    for e in &serials(&mut station).executions {
        assert_eq!(e.record.outcome, Outcome::Error);
        let listed = &e.record.metadata.extra["instruments"];
        assert_eq!(
            listed[1],
            serde_json::json!({"name": "meter", "setup": 1}),
            "{listed}"
        );
    }
}

#[test]
fn a_plug_both_per_slot_and_shared_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(1, |_| {
        quiet_test(dir.path())
            .phases([use_instrument])
            .plug(Instrument::default())
    })
    .shared_plug(Instrument::default())
    .quiet();
    let record = &serials(&mut station).executions[0].record;
    assert_eq!(record.outcome, Outcome::Error);
    let description = &record.outcome_details[0].description;
    assert!(
        description
            .contains("the plug `Instrument` is given to the test and shared by the station"),
        "{description}"
    );
}

#[test]
fn a_slot_whose_serial_number_cant_be_had_errors_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(3, |_| {
        quiet_test(dir.path())
            .phases([step_one])
            .plug(board(Fault::None, Duration::ZERO))
    })
    .quiet();
    let batch = station.run(|slot| match slot.index() {
        1 => Err("the scanner timed out".to_owned()),
        2 => panic!("scanner driver bug"),
        _ => Ok("SN-1".to_owned()),
    });
    let outcomes: Vec<(Outcome, &str)> = batch
        .executions
        .iter()
        .map(|e| {
            (
                e.record.outcome,
                e.record
                    .outcome_details
                    .first()
                    .map_or("", |d| d.code.as_str()),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::Pass, ""),
            (Outcome::Error, "SerialNumberUnavailable"),
            (Outcome::Error, "Panic")
        ]
    );
    assert!(
        batch.executions[2].record.outcome_details[0]
            .description
            .contains("scanner driver bug")
    );
}

#[test]
fn a_unit_scanned_into_two_slots_is_an_error_in_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::with_slot_names(["A1", "A2", "A3"], |_| {
        quiet_test(dir.path())
            .phases([step_one])
            .plug(board(Fault::None, Duration::ZERO))
    })
    .quiet();
    let batch = station.run(|slot| ["SN-1", "SN-2", "SN-1"][slot.index()]);
    let outcomes: Vec<Outcome> = batch.executions.iter().map(|e| e.record.outcome).collect();
    assert_eq!(outcomes, [Outcome::Pass, Outcome::Pass, Outcome::Error]);
    let detail = &batch.executions[2].record.outcome_details[0];
    assert_eq!(detail.code, "SerialNumberUnavailable");
    assert!(
        detail
            .description
            .contains("SN-1 is the serial number of the unit in A1 already"),
        "{}",
        detail.description
    );
}

/// The JSON records written in `dir`.
fn json_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Progress and summary lines name each slot (the station's console, in a real process).
#[test]
fn the_example_prints_progress_and_a_line_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(&crate::example_binaries::executables()["multi_slot"])
        .env("TOFU_OUTPUT_DIR", dir.path())
        .env_remove("TOFUPILOT_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for slot in 1..=4 {
        let unit = format!("PCB01B01S{slot}");
        assert!(
            stdout.contains(&format!("slot {slot}  {unit}  flash_firmware  PASS")),
            "{stdout}"
        );
        let summary = stdout
            .lines()
            .find(|l| l.starts_with(&format!("  slot {slot}  {unit}")))
            .unwrap_or_else(|| panic!("no summary line for slot {slot}: {stdout}"));
        let expected = if slot == 3 { "FAIL" } else { "PASS" };
        assert!(summary.contains(expected), "{summary}");
    }
    assert!(
        stdout.contains("input_current = 0.4166666666666667 A"),
        "{stdout}"
    );
    let records = json_records(dir.path());
    assert_eq!(records.len(), 4);
    let waited: Vec<i64> = records
        .iter()
        .map(|r| r["phases"][0]["plug_wait_millis"].as_i64().unwrap())
        .collect();
    // Three slots waited for another's use of the supply (each holds it for a phase); the
    // first one only for its own turn to come (a millisecond may pass meanwhile on a busy
    // machine).
    assert!(
        waited.iter().filter(|&&w| w >= 50).count() == 3,
        "{waited:?}"
    );
    // Each slot's record lists its own DMM, then the station's supply (the simulator's, over
    // loopback sockets).
    for r in &records {
        let slot = r["slot"]["index"].as_u64().unwrap() + 1;
        assert_eq!(
            crate::examples::instrument_idns(r),
            [
                format!("TOFU SIM,DMM-6500,DMM00050{slot},1.7.2").as_str(),
                "TOFU SIM,PSU-3005,PSU000202,2.1.0"
            ],
        );
    }
}

/// Ctrl-C during a batch: every slot stops, tears down, and writes its record as ABORTED.
#[test]
fn ctrl_c_aborts_every_slot_with_its_teardowns_and_records() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        std::process::Command::new(&crate::example_binaries::executables()["multi_slot"])
            .args(["--flash-ms", "30000"])
            .env("TOFU_OUTPUT_DIR", dir.path())
            .env_remove("TOFUPILOT_API_KEY")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    // Wait until every slot is programming (each has passed power_on).
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("power_on"))
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "{:?}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for slot in 1..=4 {
        assert!(
            stderr.contains(&format!("board in slot {slot} released")),
            "{stderr}"
        );
    }
    assert!(stderr.contains("power supply off"), "{stderr}");
    let records = json_records(dir.path());
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["outcome"], "ABORTED", "{}", r["dut_id"]);
    }
}

/// The operator scans each slot's board in turn; a bad scan is asked again.
#[test]
fn each_slots_serial_number_is_scanned_in_turn() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        std::process::Command::new(&crate::example_binaries::executables()["multi_slot"])
            .arg("--scan")
            .env("TOFU_OUTPUT_DIR", dir.path())
            .env("TOFU_PROMPT_STDIN", "1")
            .env_remove("TOFUPILOT_API_KEY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"PCB01A0001\nnot-a-serial\nPCB01A0002\nPCB01A0003\nPCB01A0004\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let mut units: Vec<(String, String)> = json_records(dir.path())
        .iter()
        .map(|r| {
            (
                r["slot"]["name"].as_str().unwrap().to_owned(),
                r["dut_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    units.sort();
    let expected: Vec<(String, String)> = (1..=4)
        .map(|i| (format!("slot {i}"), format!("PCB01A000{i}")))
        .collect();
    assert_eq!(units, expected, "{stdout}");
}

/// The slot closure may return a `Result`, so `?` works in it (`.limits_file(…)?`): the
/// station, or the first slot's error.
#[test]
fn the_slot_closure_may_fail_with_its_error() {
    let built: Result<Station, tofu_core::LimitsFileError> = Station::new(3, |slot| {
        let test = Test::new("FVT1").phases([sleep_a_second]);
        // The third slot's file has a typo.
        let key = if slot.index() == 2 {
            "in_rnge"
        } else {
            "in_range"
        };
        test.limits_toml(
            &format!("[use_instrument.level]\n{key} = [0, 10]\n"),
            "slots.toml",
        )
    });
    let error = built
        .expect_err("the third slot's file is wrong")
        .to_string();
    assert!(error.contains("slots.toml:2"), "{error}");

    let built: Result<Station, tofu_core::LimitsFileError> = Station::new(2, |_| {
        Test::new("FVT1")
            .phases([use_instrument])
            .limits_toml("[use_instrument.level]\nin_range = [0, 10]\n", "slots.toml")
    });
    assert!(built.is_ok());
}
