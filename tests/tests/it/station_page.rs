//! The operator's station page (`tofu-station`), in a real browser: Debian's chromium,
//! headless, driven over the Chrome DevTools Protocol (see `station_page/cdp.rs`). Real
//! typing as a barcode scanner does (text then Enter), real clicks, a real station running
//! in this process with its page served on 127.0.0.1.
//!
//! Every browser test fails on a JavaScript exception, a console error or an error log entry
//! of the page. A failing test saves a screenshot under
//! `target/tmp/station-page-screenshots/`. Without chromium the browser tests say loudly that
//! they skipped (a failure when `TOFU_REQUIRE_BROWSER=1`, as CI sets); the HTTP-level tests
//! run anyway.

mod bench;
mod cdp;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tofu_core::declare::in_range;
use tofu_core::prelude::*;
use tofu_core::prompt::{Prompt, PromptError};
use tofu_core::{Commands, Phase};
use tofu_station::{PageServer, Serve as _};

use cdp::{Browser, Page};

/// What a slot's board does in the tests' station.
#[derive(Clone)]
struct Rig {
    /// The voltage the board shows (4.5 to 5.5 passes).
    volts: f64,
    /// How long the power phase takes.
    hold: Duration,
    teardowns: Arc<AtomicUsize>,
}

impl Plug for Rig {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.teardowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[phase]
#[measures(voltage: f64 = in_range(4.5, 5.5).units(VOLT))]
fn power(
    test: &mut PhaseContext,
    rig: &mut Rig,
    m: &mut power::Measurements,
) -> Result<(), tofu_core::Stopped> {
    test.sleep(rig.hold)?;
    m.voltage.set(rig.volts);
    Ok(())
}

#[phase]
#[measures(gap: f64 = in_range(3.2, 3.4).units(MILLIMETRE), clean: bool = equals(true))]
fn gauge(m: &mut gauge::Measurements) -> Result<(), PromptError> {
    m.gap
        .set(Prompt::new("Read the gauge (mm)").number(3.2, 3.4)?);
    m.clean.set(Prompt::new("Is the board clean?").pass_fail()?);
    Ok(())
}

/// 120 points over about 1.2 s, with a log line every 10.
#[phase]
#[measures(iv: Sweep<2> = dimensions([VOLT, AMPERE]).units(OHM))]
fn sweep(test: &mut PhaseContext, m: &mut sweep::Measurements) -> Result<(), tofu_core::Stopped> {
    for i in 0..120 {
        let v = 0.05 * f64::from(i);
        m.iv.push([v, v / 100.0], 100.0);
        if i % 10 == 0 {
            tracing::info!("point {i}");
        }
        test.sleep(Duration::from_millis(10))?;
    }
    Ok(())
}

/// A station of `slots` slots whose page is served on 127.0.0.1 (any port), running unit
/// after unit until dropped.
struct Fixture {
    dir: tempfile::TempDir,
    server: PageServer,
    commands: Commands,
    slots: usize,
    teardowns: Arc<AtomicUsize>,
    station: Option<JoinHandle<usize>>,
}

/// The serial number that ends a slot's loop when the fixture is dropped.
const END: &str = "END-OF-TEST";

impl Fixture {
    /// `slots` slots; `phases` for every slot; slot 1's board shows 6 V (FAIL), the others 5 V.
    fn start(slots: usize, hold: Duration, phases: impl Fn() -> Vec<Phase>) -> Fixture {
        Fixture::start_with(slots, hold, phases, |page| page, |station| station)
    }

    fn start_with(
        slots: usize,
        hold: Duration,
        phases: impl Fn() -> Vec<Phase>,
        page: impl FnOnce(tofu_station::StationPage) -> tofu_station::StationPage,
        customize: impl FnOnce(Station) -> Station,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let teardowns = Arc::new(AtomicUsize::new(0));
        let station = Station::new(slots, |slot| {
            Test::new("PAGE")
                .phases(phases())
                .plug(Rig {
                    volts: if slot.index() == 1 { 6.0 } else { 5.0 },
                    hold,
                    teardowns: Arc::clone(&teardowns),
                })
                .json_output(JsonOutput::to_dir(dir.path()))
                .quiet()
        })
        .quiet();
        let mut station = customize(station);
        let server = page(
            station
                .page()
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .records(dir.path())
                .outbox(dir.path().join("outbox"))
                .quiet(),
        )
        .start()
        .unwrap();
        let commands = station.commands();
        let handle = std::thread::spawn(move || {
            station.run_continuously(|slot| {
                tofu_core::prompt::serial_number()
                    .message(format!("Scan the board in {slot}"))
                    .ask()
                    .map(|s| (s != END).then_some(s))
                    .transpose()
            })
        });
        Fixture {
            dir,
            server,
            commands,
            slots,
            teardowns,
            station: Some(handle),
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// The JSON records written so far.
    fn records(&self) -> Vec<Value> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
            .collect()
    }

    /// The record of the unit `serial` (waits for it).
    fn record(&self, serial: &str) -> Value {
        let deadline = Instant::now() + cdp::WAIT;
        loop {
            if let Some(r) = self.records().into_iter().find(|r| r["dut_id"] == serial) {
                return r;
            }
            assert!(Instant::now() < deadline, "no record for {serial}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for slot `slot` to ask for its unit.
    fn wait_for_unit(&self, slot: usize) {
        let deadline = Instant::now() + cdp::WAIT;
        while self.get("/api/state").1["slots"][slot]["prompts"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            assert!(
                Instant::now() < deadline,
                "slot {slot} never asked for a unit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(self.server.local_addr(), "GET", path, &[], "");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Fixture {
    /// Ends every slot's loop: aborts what runs, then gives each slot the serial that ends it.
    fn drop(&mut self) {
        self.commands.abort_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ended = vec![false; self.slots];
        while ended.iter().any(|e| !e) && Instant::now() < deadline {
            for (slot, ended) in ended.iter_mut().enumerate() {
                *ended = *ended || self.commands.start_slot(slot, END).is_ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(station) = self.station.take()
            && ended.iter().all(|e| *e)
        {
            let _ = station.join();
        }
    }
}

/// One HTTP/1.1 request; the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The first `count` server-sent events of `GET /events` with these headers: `(event type,
/// id, data)`.
fn sse(addr: SocketAddr, headers: &[(&str, &str)], count: usize) -> Vec<(String, u64, Value)> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut request = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while events.len() < count && Instant::now() < deadline {
        let mut buf = [0u8; 65536];
        if let Ok(n) = stream.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        events = parse_sse(&text);
    }
    events.truncate(count);
    events
}

fn parse_sse(text: &str) -> Vec<(String, u64, Value)> {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked encoding: the chunk sizes are lines of their own, without a colon.
    let mut events = Vec::new();
    let (mut kind, mut id, mut data) = ("message".to_owned(), 0, None);
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_owned();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str(v).ok();
        } else if line.trim().is_empty()
            && let Some(d) = data.take()
        {
            events.push((std::mem::replace(&mut kind, "message".to_owned()), id, d));
        }
    }
    events
}

fn open(fixture: &Fixture, name: &str) -> Option<(Browser, Page)> {
    let mut browser = Browser::launch()?;
    let mut page = browser.open(&fixture.url(), name);
    page.wait_for(
        &format!(
            "document.querySelectorAll('[data-slot]').length === {}",
            fixture.slots
        ),
        "a card per slot",
    );
    Some((browser, page))
}

/// The text of slot `slot`'s card.
fn card_text(page: &mut Page, slot: usize) -> String {
    page.eval(&format!(
        "document.querySelector('[data-slot=\"{slot}\"]').textContent"
    ))
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Clicks slot `slot`'s answer field (its scan field when it waits for a unit).
fn click_field(page: &mut Page, slot: usize) {
    let selector = format!("[data-slot=\"{slot}\"] input.answer");
    page.wait_for(
        &format!("document.querySelector('{selector}')"),
        "the answer field",
    );
    page.click(&selector);
    page.wait_for(
        &format!("document.activeElement === document.querySelector('{selector}')"),
        "the field has the focus",
    );
}

#[test]
fn a_scanned_unit_runs_and_its_banner_stays_until_the_next_one_a_failure_lists_its_measurement() {
    let fixture = Fixture::start(2, Duration::from_millis(400), || vec![power]);
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    // Scanner-first: the first free slot's field has the focus; a scan is text then Enter.
    page.wait_for(
        "document.activeElement === document.querySelector('[data-slot=\"0\"] input.answer')",
        "slot 0's scan field has the focus",
    );
    page.scan("PCB01A0001");
    page.wait_state(0, "RUNNING");
    page.wait_state(0, "PASS");
    assert!(card_text(&mut page, 0).contains("PCB01A0001"));
    // Slot 1's board shows 6 V: FAIL, with the failing measurement listed on the banner.
    click_field(&mut page, 1);
    page.scan("PCB01A0002");
    page.wait_state(1, "FAIL");
    let failures = page.eval(
        "[...document.querySelectorAll('[data-slot=\"1\"] .banner li')].map(li => li.textContent)",
    );
    assert_eq!(failures, serde_json::json!(["power.voltage"]));
    assert_eq!(fixture.record("PCB01A0002")["outcome"], "FAIL");
    assert_eq!(fixture.record("PCB01A0001")["outcome"], "PASS");
    // The banner stays while the slot waits for its next unit…
    std::thread::sleep(Duration::from_millis(300));
    page.wait_state(0, "PASS");
    // …and goes when the next unit is scanned into that slot.
    click_field(&mut page, 0);
    page.scan("PCB01A0003");
    page.wait_state(0, "RUNNING");
    assert!(
        !card_text(&mut page, 0).contains("PASS") || card_text(&mut page, 0).contains("RUNNING")
    );
    page.wait_state(0, "PASS");
    // The recent runs list them, with links to their HTML-less records (no report output).
    page.wait_for(
        "document.querySelectorAll('#runs tbody tr').length === 3",
        "three recent runs",
    );
    page.assert_no_errors();
}

#[test]
fn a_prompt_is_answered_on_the_page_a_number_refused_out_of_range_then_pass_fail_by_touch() {
    let fixture = Fixture::start(1, Duration::ZERO, || vec![gauge]);
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.scan("PCB01A0010");
    page.wait_for(
        "document.querySelector('[data-slot=\"0\"] form.ask')?.dataset.kind === 'number'",
        "the number prompt",
    );
    page.wait_state(0, "PROMPT");
    page.wait_for(
        "document.activeElement?.matches('form[data-kind=\"number\"] input')",
        "the number field has the focus",
    );
    // Out of range: refused on the page, saying why, nothing sent.
    page.scan("9");
    page.wait_for(
        "document.querySelector('[data-slot=\"0\"] .reason').textContent.includes('between')",
        "the refusal",
    );
    page.eval("document.activeElement.value = ''");
    page.scan("3.3");
    page.wait_for(
        "document.querySelector('[data-slot=\"0\"] form.ask')?.dataset.kind === 'pass_fail'",
        "the pass/fail prompt",
    );
    page.click("[data-slot=\"0\"] button[data-answer=\"pass\"]");
    page.wait_state(0, "PASS");
    let record = fixture.record("PCB01A0010");
    let measurements = &record["phases"][0]["measurements"];
    assert_eq!(measurements["gap"]["measured_value"], 3.3);
    assert_eq!(measurements["clean"]["measured_value"], true);
    page.assert_no_errors();
}

#[test]
fn stop_aborts_a_slot_with_its_teardowns_and_station_stop_aborts_the_others() {
    let fixture = Fixture::start(3, Duration::from_secs(60), || vec![power]);
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    for (slot, serial) in ["PCB01A0020", "PCB01A0021", "PCB01A0022"]
        .iter()
        .enumerate()
    {
        click_field(&mut page, slot);
        page.scan(serial);
        page.wait_state(slot, "RUNNING");
    }
    // STOP asks first: cancelling leaves the run alone.
    page.click("[data-slot=\"0\"] button[data-action=\"stop-slot\"]");
    page.wait_for(
        "!document.getElementById('confirm').hidden",
        "the confirmation",
    );
    page.click("#confirm-no");
    std::thread::sleep(Duration::from_millis(200));
    page.wait_state(0, "RUNNING");
    page.click("[data-slot=\"0\"] button[data-action=\"stop-slot\"]");
    page.click("#confirm-yes");
    page.wait_state(0, "ABORTED");
    let record = fixture.record("PCB01A0020");
    assert_eq!(record["outcome"], "ABORTED");
    assert_eq!(
        fixture.teardowns.load(Ordering::SeqCst),
        1,
        "slot 0's plug torn down"
    );
    page.wait_state(1, "RUNNING");
    // The station's STOP: every other slot.
    page.click("#stop-all");
    page.click("#confirm-yes");
    page.wait_state(1, "ABORTED");
    page.wait_state(2, "ABORTED");
    assert_eq!(fixture.record("PCB01A0022")["outcome"], "ABORTED");
    assert_eq!(fixture.teardowns.load(Ordering::SeqCst), 3);
    page.assert_no_errors();
}

#[test]
fn a_page_reloaded_mid_run_shows_the_same_state_and_misses_no_event() {
    let fixture = Fixture::start(2, Duration::from_millis(100), || vec![power, sweep]);
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.scan("PCB01A0030");
    click_field(&mut page, 1);
    page.scan("PCB01A0031");
    page.wait_for(
        "Number(document.querySelector('[data-slot=\"0\"] .chart')?.dataset.points) > 10",
        "the sweep charted live",
    );
    page.reload();
    page.wait_for(
        "window.tofuStation.seen.snapshots === 1 && window.tofuStation.seen.events > 0",
        "events after the reload",
    );
    page.wait_state(0, "PASS");
    page.wait_state(1, "FAIL");
    // Both slots wait for their next unit: nothing more happens. The page catches up…
    fixture.wait_for_unit(0);
    fixture.wait_for_unit(1);
    let (_, state) = fixture.get("/api/state");
    page.wait_for(
        &format!("window.tofuStation.seen.seq === {}", state["seq"]),
        "the page at the station's last event",
    );
    let seen = page.eval("window.tofuStation.seen");
    assert_eq!(seen["gaps"], 0, "{seen}");
    // …and what it shows is what the station says.
    let shown = page.eval(
        "window.tofuStation.slots.map(s => [s.state, s.serial, s.failures, s.last && s.last.name])",
    );
    let expected: Vec<Value> = state["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            serde_json::json!([
                s["state"],
                s["serial_number"],
                s["failures"],
                s["last_measurement"]["name"]
            ])
        })
        .collect();
    assert_eq!(shown, Value::Array(expected));
    page.assert_no_errors();
}

#[test]
fn two_pages_follow_the_same_station() {
    let fixture = Fixture::start(2, Duration::from_millis(300), || vec![power]);
    let Some((mut browser, mut first)) = open(&fixture, "first") else {
        return;
    };
    let mut second = browser.open(&fixture.url(), "second");
    second.wait_for(
        "document.querySelectorAll('[data-slot]').length === 2",
        "the second page's cards",
    );
    first.scan("PCB01A0040");
    second.wait_state(0, "RUNNING");
    // The second page starts slot 1.
    click_field(&mut second, 1);
    second.scan("PCB01A0041");
    first.wait_state(1, "FAIL");
    second.wait_state(0, "PASS");
    first.wait_state(0, "PASS");
    for page in [&mut first, &mut second] {
        let seen = page.eval("window.tofuStation.seen");
        assert_eq!(seen["gaps"], 0, "{seen}");
        page.assert_no_errors();
    }
}

#[test]
fn a_javascript_or_console_error_is_caught() {
    let fixture = Fixture::start(1, Duration::ZERO, || vec![power]);
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.assert_no_errors();
    page.eval("console.error('something broke')");
    page.eval("setTimeout(() => { throw new Error('boom'); }, 0); 1");
    page.eval("new Promise(r => setTimeout(() => r(1), 100))");
    let errors = page.errors.join("\n");
    assert!(errors.contains("something broke"), "{errors}");
    assert!(errors.contains("boom"), "{errors}");
    page.errors.clear();
}

#[test]
fn script_in_a_serial_a_measurement_name_a_log_message_and_a_prompt_shows_as_text() {
    const SERIAL: &str = "<img src=x onerror=\"window.pwned=1\">";
    const NAME: &str = "<img src=x onerror=window.pwned=2>";
    const LOG: &str = "<script>window.pwned=3</script><b>bold</b>";
    const PROMPT: &str = "<img src=x onerror=window.pwned=4> press Enter";
    let fixture = Fixture::start(1, Duration::ZERO, || {
        vec![
            Phase::dynamic("<i>phase</i>")
                .measure::<f64, _>(NAME, in_range(0.0, 1.0))
                .run(|_test, m| {
                    tracing::info!("{LOG}");
                    Prompt::new(PROMPT).confirm()?;
                    m.get::<f64>(NAME)?.set(5.0);
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                }),
        ]
    });
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.scan(SERIAL);
    page.wait_for(
        "document.querySelector('[data-slot=\"0\"] form.ask')?.dataset.kind === 'confirm'",
        "the prompt",
    );
    let text = card_text(&mut page, 0);
    assert!(text.contains(SERIAL), "{text}");
    assert!(text.contains(PROMPT), "{text}");
    assert!(text.contains(LOG), "{text}");
    page.press_enter();
    page.wait_state(0, "FAIL");
    let text = card_text(&mut page, 0);
    assert!(text.contains(&format!("<i>phase</i>.{NAME}")), "{text}");
    assert_eq!(page.eval("window.pwned === undefined"), true);
    assert_eq!(
        page.eval(
            "document.querySelectorAll('#slots img, #slots script, #slots b, #slots i').length"
        ),
        0
    );
    page.wait_for(
        "document.querySelectorAll('#runs tbody tr').length === 1",
        "the run listed",
    );
    let listed = page.eval("document.querySelector('#runs tbody').textContent");
    assert!(listed.as_str().unwrap().contains(SERIAL), "{listed}");
    assert_eq!(
        page.eval("document.querySelectorAll('#runs img').length"),
        0
    );
    page.assert_no_errors();
}

#[test]
fn a_post_from_a_foreign_origin_is_refused_and_changes_nothing() {
    let fixture = Fixture::start(1, Duration::ZERO, || vec![power]);
    let addr = fixture.server.local_addr();
    fixture.wait_for_unit(0);
    let body = r#"{"serial": "PCB01A0050"}"#;
    for (name, value) in [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let (status, answer) = http(addr, "POST", "/api/slots/0/start", &[(name, value)], body);
        assert_eq!(status, 403, "{name}: {value}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["field"], name);
    }
    let (status, _) = http(
        addr,
        "POST",
        "/api/abort",
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(status, 403);
    // A page elsewhere whose name was rebound to 127.0.0.1: its Host is refused.
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    // Nothing started.
    std::thread::sleep(Duration::from_millis(200));
    assert!(fixture.records().is_empty());
    assert_eq!(fixture.get("/api/state").1["slots"][0]["state"], "IDLE");
    // The page's own origin, and a tool without one, are served.
    let origin = format!("http://{addr}");
    let (status, answer) = http(
        addr,
        "POST",
        "/api/slots/0/start",
        &[("Origin", &origin)],
        body,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(fixture.record("PCB01A0050")["outcome"], "PASS");
}

#[test]
fn commands_refuse_bad_input_naming_the_field_and_the_value() {
    let fixture = Fixture::start(2, Duration::from_secs(60), || vec![power]);
    let addr = fixture.server.local_addr();
    for (path, body, status, field, value) in [
        (
            "/api/slots/7/start",
            r#"{"serial": "A"}"#,
            404,
            "slot",
            serde_json::json!(7),
        ),
        (
            "/api/slots/x/start",
            r#"{"serial": "A"}"#,
            400,
            "slot",
            serde_json::json!("x"),
        ),
        (
            "/api/slots/0/start",
            r#"{"serial": 5}"#,
            400,
            "serial",
            serde_json::json!(5),
        ),
        (
            "/api/slots/0/start",
            r#"{"serial": ""}"#,
            400,
            "serial",
            serde_json::json!(""),
        ),
        ("/api/slots/0/start", r#"{}"#, 400, "serial", Value::Null),
        (
            "/api/slots/0/start",
            "not json",
            400,
            "serial",
            serde_json::json!("not json"),
        ),
        (
            "/api/prompts/abc",
            r#"{"value": 1}"#,
            400,
            "id",
            serde_json::json!("abc"),
        ),
        (
            "/api/prompts/999",
            r#"{"value": "x"}"#,
            409,
            "id",
            serde_json::json!(999),
        ),
        (
            "/api/prompts/1",
            r#"{"value": [1]}"#,
            400,
            "value",
            serde_json::json!([1]),
        ),
        ("/api/slots/0/abort", "", 409, "slot", serde_json::json!(0)),
    ] {
        let (got, answer) = http(addr, "POST", path, &[], body);
        let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(answer["field"], field, "{path} {body}: {answer}");
        assert_eq!(answer["value"], value, "{path} {body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let too_long = format!(
        r#"{{"serial": "{}"}}"#,
        "A".repeat(tofu_core::MAX_ANSWER + 1)
    );
    let (got, answer) = http(addr, "POST", "/api/slots/0/start", &[], &too_long);
    assert_eq!(got, 400, "{answer}");
    let (got, answer) = http(addr, "POST", "/api/abort", &[], "");
    assert_eq!((got, answer.as_str()), (200, r#"{"aborted":0}"#));
}

#[test]
fn events_resume_after_the_last_event_id_or_start_from_a_snapshot() {
    let fixture = Fixture::start(1, Duration::ZERO, || vec![power]);
    let addr = fixture.server.local_addr();
    let origin = format!("http://{addr}");
    fixture.wait_for_unit(0);
    let (status, _) = http(
        addr,
        "POST",
        "/api/slots/0/start",
        &[("Origin", &origin)],
        r#"{"serial": "PCB01A0060"}"#,
    );
    assert_eq!(status, 200);
    fixture.record("PCB01A0060");
    // A new stream: a snapshot first, then the events after it.
    let fresh = sse(addr, &[], 1);
    assert_eq!(fresh[0].0, "snapshot");
    assert_eq!(fresh[0].2["slots"][0]["serial_number"], "PCB01A0060");
    let last = fresh[0].1;
    assert!(last > 5);
    // Resuming after event 3: events 4, 5, 6… in order, each with its id.
    let resumed = sse(addr, &[("Last-Event-ID", "3")], 3);
    let ids: Vec<u64> = resumed.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids, [4, 5, 6]);
    for (kind, id, data) in &resumed {
        assert_eq!(kind, "message");
        assert_eq!(data["seq"], *id);
        assert_eq!(data["v"], 1);
    }
    // The same with the id in the query (a client that can't set headers).
    let (status, body) = http(addr, "GET", "/api/state", &[], "");
    assert_eq!(status, 200, "{body}");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(
        stream,
        "GET /events?last_event_id=5 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while parse_sse(&text).is_empty() && Instant::now() < deadline {
        if let Ok(n) = stream.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert_eq!(parse_sse(&text)[0].1, 6, "{text}");
}

/// The messages of a batched stream (`GET /events?{query}`), read until `done` says so:
/// `(id, the events of its data lines)` each, the `retry:` and snapshots left out.
fn batches(
    addr: SocketAddr,
    query: &str,
    done: impl Fn(&[(u64, Vec<Value>)]) -> bool,
) -> Vec<(u64, Vec<Value>)> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        stream,
        "GET /events?{query} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let (mut text, mut buf) = (String::new(), vec![0u8; 65536]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut messages = Vec::new();
        let (mut id, mut data) = (None, Vec::new());
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        // Chunk sizes are lines without a colon: left out like comments.
        for line in body.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push(serde_json::from_str::<Value>(v).unwrap());
            } else if line.starts_with("event: snapshot") {
                data.push(Value::Null);
            } else if line.is_empty() {
                if let Some(id) = id.take()
                    && !data.contains(&Value::Null)
                {
                    messages.push((id, std::mem::take(&mut data)));
                }
                data.clear();
            }
        }
        if done(&messages) || Instant::now() > deadline {
            return messages;
        }
        if let Ok(n) = stream.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

#[test]
fn batched_streams_send_a_message_per_batch_and_resume_after_its_id() {
    // Three phases of two measurements: events a later one replaces on the card.
    let phases = || {
        (0..3)
            .map(|i| {
                Phase::dynamic(format!("step_{i}"))
                    .measure::<f64, _>("a", in_range(0.0, 10.0))
                    .measure::<f64, _>("b", in_range(0.0, 10.0))
                    .run(|_test, m| {
                        m.get::<f64>("a")?.set(1.0);
                        m.get::<f64>("b")?.set(2.0);
                        Ok::<(), tofu_core::phase::MeasurementAccessError>(())
                    })
            })
            .collect()
    };
    let fixture = Fixture::start(1, Duration::ZERO, phases);
    let addr = fixture.server.local_addr();
    let origin = format!("http://{addr}");
    let unit = |serial: &str| {
        fixture.wait_for_unit(0);
        let body = format!(r#"{{"serial": "{serial}"}}"#);
        let (status, _) = http(
            addr,
            "POST",
            "/api/slots/0/start",
            &[("Origin", &origin)],
            &body,
        );
        assert_eq!(status, 200);
        fixture.record(serial);
    };
    unit("PCB01A0070");
    fixture.wait_for_unit(0);
    let (_, state) = fixture.get("/api/state");
    let last = state["seq"].as_u64().unwrap();
    // Every event after 3 in one message (the run is over: they were all waiting), each on
    // its line in order, the message's id the last one's.
    let all = batches(addr, "batch=1&last_event_id=3", |m| {
        m.last().is_some_and(|(id, _)| *id >= last)
    });
    let seqs: Vec<u64> = all
        .iter()
        .flat_map(|(_, events)| events.iter().map(|e| e["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(seqs, (4..=last).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap().0, last);
    assert!(
        all.len() < seqs.len(),
        "one message per batch, not per event"
    );
    // The page's view of the same events: fewer lines, the first and the last among them,
    // the same id, and the last measurement set still there.
    let coalesced = batches(addr, "coalesce=1&last_event_id=3", |m| {
        m.last().is_some_and(|(id, _)| *id >= last)
    });
    let kept: Vec<&Value> = coalesced.iter().flat_map(|(_, events)| events).collect();
    assert!(kept.len() < seqs.len(), "{kept:?}");
    assert_eq!(kept[0]["seq"], 4);
    assert_eq!(kept.last().unwrap()["seq"], last);
    assert_eq!(coalesced.last().unwrap().0, last);
    let measured = |events: &[&Value]| {
        events
            .iter()
            .rev()
            .find(|e| e["type"] == "measurement_set")
            .map(|e| e["name"].clone())
    };
    let every: Vec<&Value> = all.iter().flat_map(|(_, events)| events).collect();
    assert_eq!(measured(&kept), measured(&every));
    // Resuming after a batch's id: the next unit's events, from the one right after it.
    let next = std::thread::spawn(move || {
        batches(addr, &format!("batch=1&last_event_id={last}"), |m| {
            !m.is_empty()
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    unit("PCB01A0071");
    let next = next.join().unwrap();
    assert_eq!(next[0].1[0]["seq"], last + 1);
}

#[test]
fn a_resume_id_older_than_the_replay_buffer_gets_a_snapshot_first() {
    // A lone test publishing more events than the buffer holds.
    const KEPT: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let many = Phase::dynamic("many").run(|_test, _m| {
        for i in 0..(KEPT + 50) {
            tracing::info!("line {i}");
        }
        Ok::<(), std::convert::Infallible>(())
    });
    let mut test = Test::new("MANY")
        .phases([many])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let server = test
        .page()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .records(dir.path())
        .replay_buffer(KEPT, tofu_station::REPLAY_BYTES)
        .quiet()
        .start()
        .unwrap();
    let _ = test.execute(|| "SN-MANY");
    let addr = server.local_addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(addr, "GET", "/api/state", &[], "")
        .1
        .contains("\"RUNNING\"")
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let old = sse(addr, &[("Last-Event-ID", "2")], 1);
    assert_eq!(old[0].0, "snapshot", "an id too old starts from a snapshot");
    let latest = old[0].1;
    assert!(latest > KEPT as u64);
    // An id still in the buffer resumes right after it.
    let recent = (latest - 5).to_string();
    let resumed = sse(addr, &[("Last-Event-ID", &recent)], 1);
    assert_eq!(
        (resumed[0].0.as_str(), resumed[0].1),
        ("message", latest - 4)
    );
}

#[test]
fn a_bind_other_than_loopback_needs_a_token() {
    // 127.0.0.2 is not the default address: a token is generated, and required.
    let fixture = Fixture::start_with(
        1,
        Duration::ZERO,
        || vec![power],
        |page| page.bind(SocketAddr::from(([127, 0, 0, 2], 0))),
        |station| station,
    );
    let addr = fixture.server.local_addr();
    let token = fixture
        .server
        .token()
        .expect("a token off the default address")
        .to_owned();
    assert!(token.len() >= 32);
    assert!(fixture.url().contains(&token));
    for path in ["/", "/api/state", "/events", "/api/runs"] {
        let (status, body) = http(addr, "GET", path, &[], "");
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, _) = http(addr, "POST", "/api/abort", &[], "");
    assert_eq!(status, 401);
    let wrong = format!("Bearer {}", "0".repeat(token.len()));
    assert_eq!(
        http(addr, "GET", "/api/state", &[("Authorization", &wrong)], "").0,
        401
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(addr, "GET", "/api/state", &[("Authorization", &bearer)], "").0,
        200
    );
    // An empty token is refused at start.
    let bad = Station::new(1, |_| Test::new("T").quiet())
        .page()
        .token("")
        .bind(SocketAddr::from(([127, 0, 0, 2], 0)))
        .start();
    assert!(matches!(bad, Err(tofu_station::ServeError::BadToken)));
    // The browser opens the printed URL (the token becomes a cookie) and drives the station.
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.scan("PCB01A0070");
    page.wait_state(0, "PASS");
    page.assert_no_errors();
}

/// The README's screenshot, of a page already serving: `TOFU_STATION_URL=http://127.0.0.1:8080/
/// TOFU_SCREENSHOT=docs/station-page.png cargo test -p tests --test it readme_screenshot --
/// --ignored` (`cargo run --example station_ui` serving, driven as the README says).
#[test]
#[ignore = "takes the README's screenshot of a running station_ui"]
fn readme_screenshot() {
    let (Ok(url), Ok(path)) = (
        std::env::var("TOFU_STATION_URL"),
        std::env::var("TOFU_SCREENSHOT"),
    ) else {
        panic!("set TOFU_STATION_URL and TOFU_SCREENSHOT");
    };
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let mut page = browser.open(&url, "readme");
    page.wait_for(
        "document.querySelectorAll('[data-slot]').length > 0",
        "the cards",
    );
    let wait = std::env::var("TOFU_SCREENSHOT_WAIT_MS").map_or(800, |ms| ms.parse().unwrap());
    std::thread::sleep(Duration::from_millis(wait));
    let png = page.screenshot("readme");
    std::fs::copy(&png, &path).unwrap();
    page.assert_no_errors();
}

/// `station_ui` as a real process: it prints its URL, a unit scanned into a slot runs through
/// the LED question answered over HTTP, its record and report are listed, and SIGTERM stops
/// the station.
#[test]
fn the_station_ui_example_serves_its_page_and_stops_on_sigterm() {
    use std::io::BufRead as _;
    let records = tempfile::tempdir().unwrap();
    let mut child =
        std::process::Command::new(&crate::example_binaries::executables()["station_ui"])
            .args(["--port", "0", "--sweep-ms", "1", "--records"])
            .arg(records.path())
            .env_remove("TOFUPILOT_API_KEY")
            .env("TOFU_OUTBOX_DIR", records.path().join("outbox"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("station page: ") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no URL printed");
    }
    let url = line.trim().trim_start_matches("station page: ").to_owned();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let state = |addr| -> Value {
        serde_json::from_str(&http(addr, "GET", "/api/state", &[], "").1).unwrap()
    };
    let deadline = Instant::now() + cdp::WAIT;
    while state(addr)["slots"][2]["prompts"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "slot 2 never asked for its unit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = http(
        addr,
        "POST",
        "/api/slots/2/start",
        &[],
        r#"{"serial": "PCB01A0900"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let question = loop {
        let slot = &state(addr)["slots"][2];
        if let Some(p) = slot["prompts"].as_array().and_then(|p| p.first())
            && p["kind"]["kind"] == "pass_fail"
        {
            assert!(
                p["image"]
                    .as_str()
                    .unwrap()
                    .starts_with("data:image/svg+xml;base64,")
            );
            break p["id"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no LED question: {slot}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/prompts/{question}"),
        &[],
        r#"{"value": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    // Slot 3's board draws too much current: FAIL, with the measurement named.
    while state(addr)["slots"][2]["state"] != "FAIL" {
        assert!(Instant::now() < deadline, "slot 2 never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        state(addr)["slots"][2]["failures"],
        serde_json::json!(["Power on.input_current"])
    );
    // The HTML report is written by the run's outputs, after its end.
    let report = loop {
        let runs: Value = serde_json::from_str(&http(addr, "GET", "/api/runs", &[], "").1).unwrap();
        if let Some(report) = runs["runs"][0]["report"].as_str() {
            break report.to_owned();
        }
        assert!(Instant::now() < deadline, "no report listed: {runs}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, page) = http(addr, "GET", &report, &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("PCB01A0900"));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let text = rest.join().unwrap();
    assert!(status.success(), "{status}\n{text}");
    assert!(text.contains("1 runs"), "{text}");
}

/// The climatic chamber: one for the station, held by one slot's phase at a time.
#[derive(Default)]
struct Chamber;

impl Plug for Chamber {}

#[phase]
fn soak(test: &mut PhaseContext, _chamber: &mut Chamber) -> Result<(), tofu_core::Stopped> {
    test.sleep(Duration::from_millis(1500))
}

#[test]
fn a_card_says_which_shared_instrument_its_slot_waits_for() {
    let fixture = Fixture::start_with(
        2,
        Duration::ZERO,
        || vec![soak],
        |page| page,
        |station| station.shared_plug(Chamber),
    );
    let Some((_browser, mut page)) = open(&fixture, "main") else {
        return;
    };
    page.scan("PCB01A0080");
    page.wait_state(0, "RUNNING");
    click_field(&mut page, 1);
    page.scan("PCB01A0081");
    page.wait_for(
        "/waiting for .*Chamber/.test(document.querySelector('[data-slot=\"1\"] .waiting').textContent)",
        "slot 1 waiting for the chamber",
    );
    assert_eq!(
        page.eval("document.querySelector('[data-slot=\"0\"] .waiting').textContent"),
        ""
    );
    page.wait_state(0, "PASS");
    page.wait_state(1, "PASS");
    assert_eq!(
        page.eval("document.querySelector('[data-slot=\"1\"] .waiting').textContent"),
        ""
    );
    page.assert_no_errors();
}

#[test]
fn reports_are_plain_files_of_the_record_folder_only() {
    let fixture = Fixture::start(1, Duration::ZERO, || vec![power]);
    let addr = fixture.server.local_addr();
    let dir = fixture.dir.path();
    std::fs::write(dir.join("SN1.PAGE.1.html"), "<html>report of SN1</html>").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.html"), "TOP-SECRET-CONTENT").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.html"), dir.join("link.html")).unwrap();
    let (status, body) = http(addr, "GET", "/reports/SN1.PAGE.1.html", &[], "");
    assert_eq!((status, body.as_str()), (200, "<html>report of SN1</html>"));
    for (path, status) in [
        ("/reports/link.html", 404),
        ("/reports/missing.html", 404),
        ("/reports/..%2Fsecret.html", 400),
        ("/reports/%2E%2E", 400),
        ("/reports/SN1.PAGE.1.json", 400),
    ] {
        let (got, body) = http(addr, "GET", path, &[], "");
        assert_eq!(got, status, "{path}: {body}");
        assert!(!body.contains("TOP-SECRET-CONTENT"), "{path}: {body}");
    }
}

/// A plug whose teardown waits until the test lets it go (20 s at most).
struct Gate {
    open: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Plug for Gate {
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let open = self.open.lock().map_err(|_| "poisoned")?;
        let _ = open.recv_timeout(Duration::from_secs(20));
        Ok(())
    }
}

#[phase]
#[measures(level: f64 = in_range(0.0, 10.0))]
fn gated(_gate: &mut Gate, m: &mut gated::Measurements) {
    m.level.set(5.0);
}

/// The last phase's events reach a plain stream while a long plug teardown still runs: the
/// bus wakes its readers for them or not (they follow its last wake closely), the stream
/// looks again on its own.
#[test]
fn the_last_phases_events_reach_a_stream_during_a_long_teardown() {
    let (open, gate) = std::sync::mpsc::channel();
    let mut test = Test::new("GATE")
        .phases([gated])
        .plug(Gate {
            open: std::sync::Mutex::new(gate),
        })
        .without_json_output()
        .quiet();
    let server = test
        .page()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .quiet()
        .start()
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.local_addr()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let run = std::thread::spawn(move || test.execute(|| "SN-GATE").record.outcome);
    let started = Instant::now();
    let mut text = String::new();
    while !text.contains("\"type\":\"phase_ended\"") && started.elapsed() < Duration::from_secs(10)
    {
        let mut buf = [0u8; 65536];
        if let Ok(n) = stream.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let seen = text.contains("\"type\":\"phase_ended\"");
    let torn_down = text.contains("\"type\":\"plug_torn_down\"");
    let _ = open.send(());
    assert_eq!(run.join().unwrap(), tofu_core::Outcome::Pass);
    assert!(seen, "no phase_ended while the teardown ran: {text}");
    assert!(!torn_down, "the teardown was not waiting: {text}");
}
