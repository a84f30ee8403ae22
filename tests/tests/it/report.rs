//! The HTML report (`tofu-report`), opened in a real browser: Debian's `chromium`, headless.
//!
//! Each test renders a report, runs chromium on it with `--dump-dom` (the DOM after the page's
//! scripts ran) and reads what the scripts recorded: `data-chart-drawn`, `data-limit-lines` on
//! each chart, `data-render-ms` on the body. Chromium runs with every host name unresolvable,
//! and each page carries a content security policy allowing nothing but its inline code and
//! `data:` images, so a page that tried to load anything would not draw.
//!
//! Without chromium these tests run their checks that need no browser, then say loudly on the
//! console that they skipped the rest; `TOFU_REQUIRE_BROWSER=1` (set by CI, which installs
//! chromium) makes that a failure.
//! Screenshots are saved under `target/tmp/tofu-report-screenshots/`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tofu_core::prelude::*;
use tofu_core::{AttachError, JsonOutput};
use tofu_report::HtmlReport;

/// The environment variable that turns "no browser, skipped" into a failure (CI sets it).
const REQUIRE_BROWSER_ENV: &str = "TOFU_REQUIRE_BROWSER";

/// The browser. Without one: a loud "SKIPPED" on the console and `None` (the test stops there,
/// after the checks that need no browser), or a failure when `TOFU_REQUIRE_BROWSER=1`.
pub(crate) fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let current = std::thread::current();
    let test = current.name().unwrap_or("a report test");
    let message = format!(
        "{test}: SKIPPED the browser checks, chromium is not installed \
         (`apt-get update && apt-get install -y chromium`; CI's .ci/run does)"
    );
    if std::env::var(REQUIRE_BROWSER_ENV).is_ok_and(|v| v == "1") {
        panic!("{message} ({REQUIRE_BROWSER_ENV}=1: a skip is a failure)");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!`, not this.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! {message}\n!!!!! set {REQUIRE_BROWSER_ENV}=1 to make this a failure\n"
    );
    None
}

const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs headless chromium on `page` with `extra` arguments; returns its stdout and how long it
/// ran.
fn run_chromium(browser: &Path, url: &str, extra: &[String]) -> (String, Duration) {
    let profile = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("can't run chromium: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish with {url} within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "chromium failed on {url} ({status})\n{stderr}"
    );
    (stdout, elapsed)
}

fn file_url(page: &Path) -> String {
    format!("file://{}", page.canonicalize().unwrap().display())
}

/// The DOM of `page` after its scripts ran, and chromium's wall time; `None` when there is no
/// browser (the test was said to be skipped, see [`chromium`]).
fn dump_dom(page: &Path) -> Option<(String, Duration)> {
    dump_dom_url(&file_url(page))
}

fn dump_dom_url(url: &str) -> Option<(String, Duration)> {
    let (dom, elapsed) = run_chromium(&chromium()?, url, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("</html>"),
        "chromium dumped no page for {url}:\n{dom}"
    );
    Some((dom, elapsed))
}

/// Saves a screenshot of `page` under `target/tmp/`, prints its path (called after a
/// [`dump_dom`] found the browser).
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let browser = chromium().expect("a browser, found by dump_dom before");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tofu-report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &browser,
        &file_url(page),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".to_owned(),
        ],
    );
    assert!(png.is_file(), "no screenshot at {}", png.display());
    println!("screenshot of {}: {}", page.display(), png.display());
    png
}

/// The opening tag of the first element with `attribute` (e.g. `data-measurement="x"`).
fn tag_with<'a>(dom: &'a str, attribute: &str) -> &'a str {
    let at = dom
        .find(attribute)
        .unwrap_or_else(|| panic!("no element with {attribute} in the page"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

/// The chart of measurement `name` (as written in the DOM dump) was drawn, with `limit_lines`
/// limit lines.
fn assert_chart_drawn(dom: &str, name: &str, limit_lines: usize) {
    let chart = tag_with(
        dom,
        &format!("data-measurement=\"{name}\" data-points-total"),
    );
    assert!(
        chart.contains("data-chart-drawn=\"1\""),
        "chart of {name} not drawn: {chart}"
    );
    assert!(
        chart.contains(&format!("data-limit-lines=\"{limit_lines}\"")),
        "chart of {name}: {chart}"
    );
    assert!(!chart.contains("data-chart-error"), "{chart}");
}

/// The page references nothing outside itself: no `http(s)://` (or `//host`) source or link,
/// and the content security policy that forbids loading anything is in place.
fn assert_loads_nothing(html: &str) {
    let lower = html.to_ascii_lowercase();
    for attribute in ["src=", "href=", "action=", "srcset=", "poster="] {
        for (at, _) in lower.match_indices(attribute) {
            let value = lower[at + attribute.len()..].trim_start_matches(['"', '\'', ' ']);
            for bad in ["http:", "https:", "//", "ftp:", "file:"] {
                assert!(
                    !value.starts_with(bad),
                    "the page loads {}",
                    &html[at..(at + 80).min(html.len())]
                );
            }
        }
    }
    assert!(lower.contains("<meta http-equiv=\"content-security-policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">"));
    assert!(!lower.contains("@import") && !lower.contains("url(http"));
}

fn render_to_file(name: &str, record: &Value) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join(format!("{name}.json"));
    std::fs::write(&json, record.to_string()).unwrap();
    let html = tofu_report::render_file(&json).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    (dir, html, page)
}

// A failing run, executed for real, with its report written by the output callback.

#[phase(name = "Power rails")]
#[measures(
    input_voltage: f64 = in_range(4.75, 5.25).units(VOLT),
    standby_current: f64 = at_most(0.05).units(AMPERE),
)]
fn report_power_rails(m: &mut report_power_rails::Measurements) {
    m.input_voltage.set(5.0);
    m.standby_current.set(0.072);
    tracing::warn!("standby current high");
}

#[phase(name = "Load sweep")]
#[measures(rail: Sweep<1> = dimensions([SECOND]).units(VOLT).each(in_range(3.2, 3.4)))]
fn report_load_sweep(
    test: &mut PhaseContext,
    m: &mut report_load_sweep::Measurements,
) -> Result<(), AttachError> {
    for i in 0..3000 {
        let t = f64::from(i) * 1e-3;
        let dip = if (1000..1010).contains(&i) { 0.15 } else { 0.0 };
        m.rail.push([t], 3.3 + 0.01 * (t * 20.0).sin() - dip);
    }
    test.attach("notes.txt", "rail dips at t = 1 s")?;
    Ok(())
}

#[test]
fn a_failing_run_reads_at_a_glance_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let execution = Test::new("FVT1")
        .part_number("PCB01")
        .revision("B")
        .phases([report_power_rails, report_load_sweep])
        .json_output(JsonOutput::to_dir(dir.path()))
        .output(HtmlReport::to_dir(dir.path()))
        .quiet()
        .execute(|| "PCB01B0001");
    assert!(!execution.passed());
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);

    // The report is next to the record, under the same name.
    let stem = format!("PCB01B0001.FVT1.{}", execution.record.start_time_millis);
    let html = dir.path().join(format!("{stem}.html"));
    assert!(dir.path().join(format!("{stem}.json")).is_file());
    assert!(
        html.is_file(),
        "{:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
    let location = execution.outputs[1]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    assert_eq!(location, format!("report written to {}", html.display()));

    let page = std::fs::read_to_string(&html).unwrap();
    assert_loads_nothing(&page);

    let Some((dom, _)) = dump_dom(&html) else {
        return;
    };
    let outcome = tag_with(&dom, "id=\"outcome\"");
    assert!(dom.contains(&format!("{outcome}FAIL</div>")), "{outcome}");
    // The failed measurements come first, marked.
    let failed = dom
        .find("data-outcome=\"FAIL\" data-measurement=\"standby_current\"")
        .unwrap();
    let sweep = dom
        .find("data-outcome=\"FAIL\" data-measurement=\"rail\"")
        .unwrap();
    let passed = dom
        .find("data-outcome=\"PASS\" data-measurement=\"input_voltage\"")
        .unwrap();
    assert!(failed < passed && sweep < passed);
    assert!(dom.contains("<a href=\"#problems\" class=\"fail\">2 failed</a>"));
    // The sweep is drawn with its two limits, and its 10 points below them are all there.
    assert_chart_drawn(&dom, "rail", 2);
    assert!(
        tag_with(&dom, "data-measurement=\"rail\" data-points-total")
            .contains("data-points-outside=\"10\"")
    );
    assert!(tag_with(&dom, "<body").contains("data-render-ms=\""));
    // Logs can be filtered: the script counted them.
    assert!(
        dom.contains("<span id=\"log-count\">1 of 1 shown</span>"),
        "log filter did not run"
    );
    assert!(dom.contains("notes.txt"));
    screenshot(&html, "failing-run");
}

/// Text that would run script if it reached the page as HTML.
const PAYLOADS: [&str; 3] = [
    r#"<img src=x onerror="document.body.dataset.pwned=1">"#,
    "</script><script>document.body.dataset.pwned=1</script>",
    r#""><svg onload="document.body.dataset.pwned=1">"#,
];

/// How `text` reads in a DOM dump (text content: `&`, `<`, `>` are written as entities).
fn as_dumped_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn text_from_the_record_stays_text() {
    let [img, script, svg] = PAYLOADS;
    let points: Vec<Value> = (0..50)
        .map(|i| json!([f64::from(i), 100.0 + f64::from(i % 3)]))
        .collect();
    let record = json!({
        "dut_id": img,
        "start_time_millis": 1_795_621_536_578_i64,
        "end_time_millis": 1_795_621_536_600_i64,
        "outcome": "FAIL",
        "outcome_details": [{"code": script, "description": svg}],
        "marginal": null,
        "metadata": {"test_name": script, "part_number": svg, "revision": img,
                     "operator": script, "custom": {"k": img}},
        "phases": [{
            "name": svg,
            "outcome": "FAIL",
            "start_time_millis": 1_795_621_536_578_i64,
            "end_time_millis": 1_795_621_536_590_i64,
            "result": {"phase_result": {"exc_type": img, "exc_val": script, "exc_tb": svg}},
            "measurements": {
                img: {"name": img, "outcome": "FAIL", "validators": [script],
                      "units": {"name": svg, "suffix": img}, "measured_value": script,
                      "docstring": svg},
                script: {"name": script, "outcome": "PASS",
                         "validators": ["All values pass: 90 <= x <= 110"],
                         "dimensions": [{"name": img, "description": script, "suffix": svg}],
                         "units": {"name": "ohm", "suffix": script},
                         "measured_value": points},
            },
            "attachments": {
                img: {"mimetype": "text/plain\"><script>document.body.dataset.pwned=1</script>",
                      "sha1": script, "data": "aGVsbG8="},
                script: {"mimetype": "image/svg+xml",
                         "data": "PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIG9ubG9hZD0nZG9jdW1lbnQuYm9keS5kYXRhc2V0LnB3bmVkPTEnLz4="},
            },
        }],
        "log_records": [
            {"level": 40, "logger_name": svg, "source": img, "lineno": 1,
             "timestamp_millis": 1_795_621_536_580_i64, "message": script, "phase": img},
            {"level": 20, "logger_name": "x", "source": "y", "lineno": 2,
             "timestamp_millis": 1_795_621_536_581_i64, "message": img},
        ],
    });
    let (_dir, html, page) = render_to_file("payloads", &record);
    for payload in PAYLOADS {
        assert!(!page.contains(payload), "{payload} reached the page as is");
    }
    assert!(!page.contains("<img src=x") && !page.contains("<svg onload"));
    assert_loads_nothing(&page);

    let Some((dom, _)) = dump_dom(&html) else {
        return;
    };
    assert!(!dom.contains("data-pwned"), "a payload ran");
    // Shown literally: the serial number, a measurement's name, a log message, an
    // attachment's name.
    let serial = tag_with(&dom, "id=\"serial\"");
    assert!(dom.contains(&format!("{serial}{}</h1>", as_dumped_text(img))));
    assert!(
        dom.contains(&format!("<td><b>{}</b>", as_dumped_text(img))),
        "measurement name"
    );
    assert!(
        dom.contains(&format!(
            "<td class=\"message\">{}</td>",
            as_dumped_text(script)
        )),
        "log message"
    );
    assert!(
        dom.contains(&format!("<b>{}</b> <small>", as_dumped_text(script))),
        "attachment name"
    );
    assert!(
        dom.contains(&format!("<td>{}</td>", as_dumped_text(script))),
        "metadata"
    );
    // The sweep named with a payload is drawn (its name went through the script's data).
    let chart = tag_with(&dom, "id=\"chart-0\"");
    assert!(
        chart.contains("data-chart-drawn=\"1\"") && chart.contains("data-limit-lines=\"2\""),
        "{chart}"
    );
    // A bad MIME type is not put into a data: URL.
    assert!(page.contains("href=\"data:application/octet-stream;base64,aGVsbG8=\""));
    screenshot(&html, "payloads");

    // Through a real run: a serial number that is a path and a payload names no other file.
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let execution = Test::new("FVT1")
        .phases([report_power_rails])
        .json_output(JsonOutput::to_dir(&records))
        .output(HtmlReport::to_dir(&records))
        .quiet()
        .execute(|| format!("../../{img}"));
    assert!(execution.outputs_ok(), "{:?}", execution.outputs);
    let written: Vec<PathBuf> = std::fs::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let html = written
        .iter()
        .find(|p| p.extension().unwrap() == "html")
        .unwrap();
    let Some((dom, _)) = dump_dom(html) else {
        return;
    };
    assert!(!dom.contains("data-pwned"));
    assert!(dom.contains(&as_dumped_text(&format!("../../{img}"))));
}

fn sample_record() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/openhtf/sample_record.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("can't read {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_record_written_by_openhtf_renders() {
    let (_dir, html, page) = render_to_file("sample_record", &sample_record());
    assert_loads_nothing(&page);
    assert!(page.contains("data-measurement=\"iv_sweep\" data-points-total=\"100\""));
    let Some((dom, _)) = dump_dom(&html) else {
        return;
    };
    assert!(dom.contains(">ERROR</div>"));
    assert_chart_drawn(&dom, "iv_sweep", 2);
    // OpenHTF's fields: the exception, the marginal phase, every phase and log.
    assert!(dom.contains("instrument did not respond"));
    assert!(dom.contains("data-outcome=\"FAIL\" data-measurement=\"leakage_current\""));
    assert_eq!(
        dom.matches("<tr class=\"log ").count(),
        sample_record()["log_records"].as_array().unwrap().len()
    );
    assert!(dom.contains("download=\"blob.bin\" href=\"data:application/octet-stream;base64,AAECAwQFBgcICQoLDA0ODw==\""));
    screenshot(&html, "openhtf-sample-record");
}

/// The embedded data of chart `index`: `{"x": [...], "y": [...], ...}`.
fn chart_data(page: &str, index: usize) -> Value {
    let open = format!("<script type=\"application/json\" id=\"chart-data-{index}\">");
    let start = page.find(&open).unwrap() + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

#[test]
fn a_million_point_sweep_opens_fast_with_every_point_outside_the_limits() {
    const N: usize = 1_000_000;
    let mut outliers = vec![7, 8, 9, 123_456, 500_000, 500_001, 999_999];
    outliers.extend((600_000..600_100).step_by(3));
    let outliers: std::collections::HashSet<usize> = outliers.into_iter().collect();
    let value = |i: usize| {
        let t = i as f64 * 1e-5;
        if outliers.contains(&i) {
            if i.is_multiple_of(2) {
                112.0 + t
            } else {
                85.0 - t
            }
        } else {
            100.0 + 6.0 * (t * 3.0).sin() + 0.5 * ((i * 7919 % 1000) as f64 / 1000.0 - 0.5)
        }
    };
    let rows: Vec<Value> = (0..N)
        .map(|i| json!([i as f64 * 1e-5, 3.3, value(i)]))
        .collect();
    let record = json!({
        "dut_id": "SN-1M", "start_time_millis": 1_795_621_536_578_i64,
        "end_time_millis": 1_795_621_546_578_i64, "outcome": "FAIL",
        "metadata": {"procedure_id": "SWEEP"},
        "phases": [{"name": "sweep", "outcome": "FAIL", "start_time_millis": 1_795_621_536_578_i64,
            "end_time_millis": 1_795_621_546_578_i64, "result": {"phase_result": "CONTINUE"},
            "measurements": {"r": {"name": "r", "outcome": "FAIL",
                "validators": ["All values pass: 90 <= x <= 110"],
                "dimensions": [{"name": "second [unit of time]", "description": "", "suffix": "s"},
                               {"name": "volt", "description": "", "suffix": "V"}],
                "units": {"name": "ohm", "suffix": "Ω"},
                "measured_value": rows}},
            "attachments": {}}],
        "log_records": [],
    });
    let started = Instant::now();
    let page = tofu_report::render(&record).unwrap();
    let render_time = started.elapsed();
    drop(record);
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("sweep-1m.html");
    std::fs::write(&html, &page).unwrap();

    // Small: reduced to about 4 points per pixel column, plus the points outside the limits.
    assert!(page.len() < 1_000_000, "the report is {} bytes", page.len());
    let data = chart_data(&page, 0);
    assert_eq!(data["total"], N);
    let (xs, ys) = (data["x"].as_array().unwrap(), data["y"].as_array().unwrap());
    assert!(
        xs.len() <= 4 * 2000 + outliers.len() && xs.len() == ys.len(),
        "{}",
        xs.len()
    );
    // (serde_json's float parsing may differ from the written number in the last bit.)
    let drawn: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (x.as_f64().unwrap(), y.as_f64().unwrap()))
        .collect();
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
    let outside: Vec<usize> = (0..N)
        .filter(|&i| !(90.0..=110.0).contains(&value(i)))
        .collect();
    assert_eq!(outside.len(), outliers.len());
    for i in outside {
        let (x, y) = (i as f64 * 1e-5, value(i));
        assert!(
            drawn.iter().any(|&(dx, dy)| same(dx, x) && same(dy, y)),
            "point {i} ({x}, {y}) outside the limits was dropped"
        );
    }
    // Same shape: the extremes of the whole sweep are drawn.
    let max_drawn = ys.iter().filter_map(Value::as_f64).fold(f64::MIN, f64::max);
    let max_all = (0..N).map(value).fold(f64::MIN, f64::max);
    assert!(same(max_drawn, max_all), "{max_drawn} vs {max_all}");

    let Some((dom, wall)) = dump_dom(&html) else {
        return;
    };
    assert_chart_drawn(&dom, "r", 2);
    let body = tag_with(&dom, "<body");
    let in_page_ms = body
        .split("data-render-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?");
    // Timings are printed, never asserted.
    println!(
        "1M-point sweep: report {} bytes, {} points drawn, rendered in {:?} (debug build); \
         opened and drawn in {in_page_ms} ms in the page (navigation start to chart drawn), \
         chromium --dump-dom wall time {} ms",
        page.len(),
        xs.len(),
        render_time,
        wall.as_millis()
    );
    screenshot(&html, "sweep-1m");
}

#[test]
fn the_index_filters_runs_by_serial_number_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    for (serial, start, outcome) in [
        ("SN-A1", 1_000, "PASS"),
        ("SN-B2", 3_000, "FAIL"),
        ("SN-A3", 2_000, "FAIL"),
    ] {
        let record = json!({"dut_id": serial, "start_time_millis": start, "end_time_millis": start + 5,
            "outcome": outcome, "metadata": {"procedure_id": "FVT1"}, "phases": []});
        std::fs::write(
            dir.path().join(format!("{serial}.json")),
            record.to_string(),
        )
        .unwrap();
    }
    let index = tofu_report::render_index(dir.path()).unwrap();
    let page = std::fs::read_to_string(&index).unwrap();
    assert_loads_nothing(&page);
    assert!(page.find("SN-B2").unwrap() < page.find("SN-A3").unwrap());
    assert!(page.find("SN-A3").unwrap() < page.find("SN-A1").unwrap());
    for serial in ["SN-A1", "SN-B2", "SN-A3"] {
        assert!(dir.path().join(format!("{serial}.html")).is_file());
    }
    let Some((dom, _)) = dump_dom(&index) else {
        return;
    };
    assert!(dom.contains("<span id=\"run-count\">3 of 3 runs</span>"));
    screenshot(&index, "index");

    // The filters, set from the address: `#serial=a&outcome=FAIL` keeps SN-A3 only.
    let Some((dom, _)) = dump_dom_url(&format!("{}#serial=a&outcome=FAIL", file_url(&index)))
    else {
        return;
    };
    assert!(
        dom.contains("<span id=\"run-count\">1 of 3 runs</span>"),
        "filters did not run"
    );
    assert!(!tag_with(&dom, "data-serial=\"SN-A3\"").contains("hidden"));
    assert!(tag_with(&dom, "data-serial=\"SN-B2\"").contains("hidden"));
    assert!(tag_with(&dom, "data-serial=\"SN-A1\"").contains("hidden"));
}

/// The `report` example runs a failing test: it exits 1 and prints its report's path, written
/// next to its record.
#[test]
fn the_report_example_writes_its_report() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let build = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--example",
            "report",
            "-p",
            "examples",
            "--message-format=json",
        ])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let executable = String::from_utf8_lossy(&build.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["target"]["name"] == "report" && m["executable"].is_string())
        .map(|m| PathBuf::from(m["executable"].as_str().unwrap()))
        .expect("cargo built no `report` example");
    let out_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let output = Command::new(executable)
        .current_dir(cwd.path())
        .env("TOFU_OUTPUT_DIR", out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the run fails on purpose\n{stdout}"
    );
    let printed = PathBuf::from(stdout.lines().last().unwrap());
    assert_eq!(printed.parent(), Some(out_dir.path()));
    assert_eq!(printed.extension().unwrap(), "html");
    assert!(printed.with_extension("json").is_file());
    let Some((dom, _)) = dump_dom(&printed) else {
        return;
    };
    assert!(dom.contains(">FAIL</div>"));
    assert_chart_drawn(&dom, "rail_under_load", 2);
    assert!(dom.contains("data-outcome=\"FAIL\" data-measurement=\"standby_current\""));
}

/// A folder that can't be written: the report goes to the system's temp folder, as the JSON
/// record does, and the run's result says where.
#[test]
fn a_report_that_cant_be_written_where_asked_goes_to_the_temp_folder() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("file");
    std::fs::write(&not_a_folder, "").unwrap();
    let execution = Test::new("REPORT-FALLBACK")
        .phases([report_power_rails])
        .without_json_output()
        .output(HtmlReport::to_dir(&not_a_folder))
        .quiet()
        .execute(|| "SN-FALLBACK");
    let location = execution.outputs[0]
        .result
        .as_ref()
        .unwrap()
        .as_deref()
        .unwrap();
    assert!(location.contains("could not be written"), "{location}");
    let written = location
        .strip_prefix("report written to ")
        .and_then(|l| l.split(" (the folder").next())
        .map(PathBuf::from)
        .unwrap();
    assert!(written.starts_with(tofu_core::fs::fallback_dir()));
    assert!(
        std::fs::read_to_string(&written)
            .unwrap()
            .contains(">SN-FALLBACK</h1>")
    );
    std::fs::remove_file(written).unwrap();
}

// A 2-D sweep (an IV curve per temperature) from a station's slot whose phase waited for a
// shared plug.

#[phase(name = "IV per temperature")]
#[measures(iv: Sweep<2> = dimensions([VOLT, DEGREE_CELSIUS]).units(AMPERE).each(in_range(0, 1)))]
fn report_iv_per_temperature(m: &mut report_iv_per_temperature::Measurements) {
    for temperature in [25.0, 50.0, 85.0] {
        for i in 0..50 {
            let v = f64::from(i) * 0.1;
            let leak = if temperature > 80.0 && i == 40 {
                0.9
            } else {
                0.0
            };
            m.iv.push([v, temperature], v * 0.1 + temperature * 0.001 + leak);
        }
    }
}

#[test]
fn a_2d_sweep_is_drawn_one_line_per_value_and_plug_waits_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = Test::new("FVT1")
        .phases([report_iv_per_temperature])
        .json_output(JsonOutput::to_dir(dir.path()))
        .quiet();
    let record = test.execute(|| "SN-IV").record;
    let mut record = serde_json::to_value(&record).unwrap();
    // As a station's slot writes it: its slot, and the phase's wait for a shared plug.
    record["slot"] = json!({"index": 1, "name": "A2", "execution_id": "b1"});
    record["phases"][0]["plug_wait_millis"] = json!(1250);
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("SN-IV.json"), record.to_string()).unwrap();

    let index = tofu_report::render_index(dir.path()).unwrap();
    let index_page = std::fs::read_to_string(&index).unwrap();
    assert!(index_page.contains("<th>Slot</th>") && index_page.contains("<td>A2</td>"));
    assert!(
        index_page.contains("<td class=\"plug-wait\">1.250 s</td>"),
        "{index_page}"
    );
    let html = dir.path().join("SN-IV.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<th>Plug wait</th>"));
    assert!(page.contains("<td class=\"plug-wait\">1.250 s</td>"));

    let Some((dom, _)) = dump_dom(&html) else {
        return;
    };
    let chart = tag_with(&dom, "data-lines");
    assert!(chart.contains("data-lines=\"3\""), "{chart}");
    assert!(chart.contains("data-chart-drawn=\"1\""), "{chart}");
    assert!(!chart.contains("data-chart-error"), "{chart}");
    // The legend names each line by the second dimension's value.
    for t in [25, 50, 85] {
        let label = format!("degree Celsius (°C) = {t}");
        assert!(dom.contains(&label), "no `{label}` in the page");
    }
    screenshot(&html, "iv-per-temperature");
}
