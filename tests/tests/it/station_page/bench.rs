//! The station page's benchmarks (BENCHMARKS.md), run by hand, in release:
//!
//! `cargo test --release -p tests --test it station_page::bench -- --ignored --nocapture --test-threads 1`
//!
//! - latency: four slots run the bench workload (phases of 10 measurements, the last one the
//!   time it was set) unit after unit; the browser records, for each value that reaches the
//!   page's DOM, the time since it was set; p50/p99/max.
//! - overhead: the 1000-phase × 10-measurement run of a `Test`, without a page, then with its
//!   page served and open in the browser.
//! - reconnects: 100 reconnections of an event stream (`Last-Event-ID`) while four slots run,
//!   every tenth a second after the last; every resumed stream must start right after the last
//!   event seen; the process's memory after a 5 s warm-up, 10 and 100 reconnections.
//!   `TOFU_BENCH_REPLAY_MB=512` gives the station's replay buffer 512 MB (and 4,000,000
//!   events) instead of its default.
//!
//! They print figures and check correctness only (no timing assertion).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tofu_core::declare::{at_least, in_range};
use tofu_core::phase::MeasurementAccessError;
use tofu_core::prelude::*;
use tofu_core::unit::VOLT;
use tofu_core::{Phase, Station};
use tofu_station::{PageServer, Serve as _};

use super::cdp::Browser;
use super::sse;

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// `phases` phases of 9 measurements and a last one, `stamp`: when it was set (epoch ms).
fn workload(phases: usize) -> Vec<Phase> {
    (0..phases)
        .map(|i| {
            let names: Vec<String> = (0..9).map(|j| format!("m{j}")).collect();
            let mut builder = Phase::dynamic(format!("phase_{i}"));
            for name in &names {
                builder = builder.measure::<f64, _>(name, in_range(0.0, 10.0).units(VOLT));
            }
            builder
                .measure::<f64, _>("stamp", at_least(0.0))
                .run(move |_test, m| {
                    for (j, name) in names.iter().enumerate() {
                        #[allow(clippy::cast_precision_loss)]
                        m.get::<f64>(name)?.set(1.0 + (j % 7) as f64 * 0.5);
                    }
                    m.get::<f64>("stamp")?.set(epoch_ms());
                    Ok::<(), MeasurementAccessError>(())
                })
        })
        .collect()
}

/// Four slots running `phases`-phase units back to back until `stop`.
fn busy_station(
    phases: usize,
    stop: &Arc<AtomicBool>,
) -> (PageServer, std::thread::JoinHandle<usize>) {
    let mut station = Station::new(4, |_| {
        Test::new("bench")
            .phases(workload(phases))
            .without_json_output()
            .quiet()
    })
    .quiet();
    let mut page = station.page();
    if let Some(mb) = std::env::var("TOFU_BENCH_REPLAY_MB")
        .ok()
        .and_then(|mb| mb.parse::<usize>().ok())
    {
        page = page.replay_buffer(4_000_000, mb << 20);
    }
    let server = page
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .quiet()
        .start()
        .unwrap();
    let stop = Arc::clone(stop);
    let runs = std::thread::spawn(move || {
        let count = std::sync::atomic::AtomicUsize::new(0);
        station.run_continuously(|slot| {
            let n = count.fetch_add(1, Ordering::Relaxed);
            (!stop.load(Ordering::Relaxed)).then(|| format!("SN-{}-{n}", slot.index()))
        })
    });
    (server, runs)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore = "a benchmark: see BENCHMARKS.md"]
fn bench_latency_in_the_browser_with_four_busy_slots() {
    let stop = Arc::new(AtomicBool::new(false));
    let (server, runs) = busy_station(1000, &stop);
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let mut page = browser.open(&server.url(), "bench");
    page.eval(
        "window.lat = []; new MutationObserver(() => { \
           const t = performance.timeOrigin + performance.now(); \
           for (const el of document.querySelectorAll('.measurement')) { \
             const m = /^stamp = ([0-9.]+)/.exec(el.textContent); \
             if (m && el.dataset.last !== m[1]) { el.dataset.last = m[1]; window.lat.push(t - Number(m[1])); } } \
         }).observe(document.getElementById('slots'), {subtree: true, childList: true, characterData: true}); 1",
    );
    std::thread::sleep(Duration::from_secs(10));
    let samples = page.eval("window.lat");
    let seen = page.eval("window.tofuStation.seen");
    let (_, state) = super::http(server.local_addr(), "GET", "/api/state", &[], "");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    stop.store(true, Ordering::Relaxed);
    let units = runs.join().unwrap();
    let mut lat: Vec<f64> = samples
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    lat.sort_by(f64::total_cmp);
    assert!(!lat.is_empty(), "no value reached the page");
    println!(
        "latency set → page DOM, 4 slots × 1000-phase units ({units} units in ~10 s, {} events published, {} seen, \
         the page {} events behind at the end, {} snapshots, {} gaps): \
         {} samples, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        state["seq"],
        seen["events"],
        state["seq"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(seen["seq"].as_u64().unwrap_or(0)),
        seen["snapshots"],
        seen["gaps"],
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    page.assert_no_errors();
}

/// CPU time (user + system, in clock ticks) from a `/proc/…/stat` line.
fn stat_ticks(stat: &str) -> u64 {
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// CPU ticks used so far by the process `root` and its descendants (chromium's processes).
fn tree_ticks(root: u32) -> u64 {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        parents.push((pid, ppid.unwrap_or(0), stat_ticks(&stat)));
    }
    let mut tree = vec![root];
    let mut total = 0;
    let mut grew = true;
    while grew {
        grew = false;
        for &(pid, ppid, _) in &parents {
            if tree.contains(&ppid) && !tree.contains(&pid) {
                tree.push(pid);
                grew = true;
            }
        }
    }
    for &(pid, _, ticks) in &parents {
        if tree.contains(&pid) {
            total += ticks;
        }
    }
    total
}

/// CPU ticks used so far by this process's threads whose name starts with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| stat_ticks(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
        .sum()
}

fn median_run_ms(test: &mut Test, runs: usize) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let _ = test.execute(|| "SN-BENCH");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

#[test]
#[ignore = "a benchmark: see BENCHMARKS.md"]
fn bench_executor_overhead_with_the_page_open() {
    let mut test = Test::new("bench")
        .phases(workload(1000))
        .without_json_output()
        .quiet();
    median_run_ms(&mut test, 3);
    let without = median_run_ms(&mut test, 15);
    let server = test
        .page()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .quiet()
        .start()
        .unwrap();
    // The replay buffer (the bus's history) filled: from then on each event published drops
    // the oldest, as at a station that has run for a while.
    let filling = tofu_station::REPLAY_EVENTS / 12_000 + 1;
    for _ in 0..filling {
        let _ = test.execute(|| "SN-BENCH");
    }
    let served = median_run_ms(&mut test, 15);
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let mut page = browser.open(&server.url(), "bench");
    // The browser settles after loading the page; then a second with the page open and no run.
    std::thread::sleep(Duration::from_secs(1));
    let ticks = |what: &str| match what {
        "chromium" => tree_ticks(browser.pid()),
        prefix => thread_ticks(prefix),
    };
    let idle = ticks("chromium");
    std::thread::sleep(Duration::from_secs(1));
    let idle = ticks("chromium") - idle;
    let threads = ["chromium", "tofu-station-pa"];
    let before: Vec<u64> = threads.map(ticks).to_vec();
    let started = Instant::now();
    let with = median_run_ms(&mut test, 15);
    let wall = started.elapsed();
    let after: Vec<u64> = threads.map(ticks).to_vec();
    std::thread::sleep(Duration::from_millis(500));
    let seen = page.eval("window.tofuStation.seen");
    // Clock ticks are 1/100 s on Linux.
    println!(
        "during the 15 runs with the page ({} ms, after {filling} runs that filled the replay buffer): \
         chromium used {} ms of CPU, the server's thread {} ms (chromium with the page open and no run: \
         {} ms of CPU a second)",
        wall.as_millis(),
        (after[0] - before[0]) * 10,
        (after[1] - before[1]) * 10,
        idle * 10
    );
    println!(
        "1000 phases × 10 measurements: median {without:.1} ms without a page, {served:.1} ms served with no \
         page open ({:.2}×), {with:.1} ms with the page open ({:.2}×; the page saw {} events, {} snapshots, {} gaps)",
        served / without,
        with / without,
        seen["events"],
        seen["snapshots"],
        seen["gaps"]
    );
    page.assert_no_errors();
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a benchmark: see BENCHMARKS.md"]
fn bench_100_reconnects_miss_nothing_and_memory_stays_flat() {
    let stop = Arc::new(AtomicBool::new(false));
    let (server, runs) = busy_station(200, &stop);
    let addr = server.local_addr();
    // Warm-up: the replay buffer fills (about 2.5 s at this pace), then memory should stay.
    std::thread::sleep(Duration::from_secs(5));
    let warm = rss_kib();
    let first = sse(addr, &[], 50);
    assert_eq!(first[0].0, "snapshot");
    let mut last = first.last().unwrap().1;
    let (mut resumed, mut snapshots, mut events) = (0, 0, 0);
    // The reconnections that started from a snapshot: which, and after how long away.
    let mut fell_back = Vec::new();
    let mut rss = Vec::new();
    for i in 1..=100 {
        let away = if i % 10 == 0 {
            // A page that comes back a second later.
            std::thread::sleep(Duration::from_secs(1));
            "1 s"
        } else {
            "0 s"
        };
        let id = last.to_string();
        let (_, state) = super::http(addr, "GET", "/api/state", &[], "");
        let station_seq = serde_json::from_str::<serde_json::Value>(&state).unwrap()["seq"]
            .as_u64()
            .unwrap_or(0);
        let got = sse(addr, &[("Last-Event-ID", &id)], 50);
        if got[0].0 == "snapshot" {
            snapshots += 1;
            fell_back.push(format!(
                "#{i}: {away} away, {} events behind",
                station_seq.saturating_sub(last)
            ));
        } else {
            assert_eq!(got[0].1, last + 1, "reconnection {i} resumed after {last}");
            resumed += 1;
        }
        for pair in got.windows(2) {
            if pair[1].0 == "snapshot" {
                // The stream fell behind what the server keeps: it starts again from there.
                snapshots += 1;
            } else {
                assert_eq!(pair[1].1, pair[0].1 + 1, "a gap in reconnection {i}");
            }
        }
        events += got.len();
        last = got.last().unwrap().1;
        if i == 10 || i == 100 {
            rss.push(rss_kib());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let units = runs.join().unwrap();
    println!(
        "100 reconnections during a busy 4-slot station ({units} units): {resumed} resumed right after the last \
         event seen, {snapshots} started from a snapshot ({}), {events} events read; resident memory after 10: \
         {} KiB, after 100: {} KiB (after a 5 s warm-up: {warm} KiB)",
        fell_back.join(", "),
        rss[0],
        rss[1]
    );
}
