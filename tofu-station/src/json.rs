//! The events' JSON form (docs/events.md), written into a reused buffer: the same bytes as
//! `serde_json::to_string(&event)`, at a fraction of its cost.
//!
//! The common fields (`v`, `seq`, `slot`, `time_millis`) are written by hand; the events a
//! running phase sends by the thousand (`phase_started`, `measurement_set`, `log`) are written
//! field by field, their values and strings by serde_json itself; every other kind is
//! serialized by serde, without the flattening that `Event`'s own `Serialize` goes through.

use serde::Serialize;
use tofu_core::event::EVENTS_VERSION;
use tofu_core::{Event, EventKind};

/// Appends `event`'s JSON form to `out`. On an error `out` is as it was.
pub(crate) fn write_event(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    all_or_nothing(out, |out| write_unchecked(out, event))
}

/// What `write` appends to `out`, or nothing if it fails.
fn all_or_nothing(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    let start = out.len();
    let written = write(out);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// Appends `event`'s JSON form as the page's view (`?coalesce=1`) sends it: a `run_started`
/// carries `phase_count`, its plan's length, instead of its plan, which the page doesn't show
/// (a thousand-phase plan is most of a run's JSON, parsed by a browser at every run); every
/// other event as [`write_event`]. On an error `out` is as it was.
pub(crate) fn write_view_event(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let EventKind::RunStarted {
        serial_number,
        procedure_id,
        test_name,
        slot_name,
        plan,
    } = &event.kind
    else {
        return write_event(out, event);
    };
    all_or_nothing(out, |out| {
        write_common(out, event)?;
        out.extend_from_slice(b",\"type\":\"run_started\",\"serial_number\":");
        put(out, serial_number.as_str())?;
        out.extend_from_slice(b",\"procedure_id\":");
        put(out, procedure_id.as_str())?;
        out.extend_from_slice(b",\"test_name\":");
        put(out, test_name.as_str())?;
        out.extend_from_slice(b",\"slot_name\":");
        put(out, slot_name)?;
        out.extend_from_slice(b",\"phase_count\":");
        put_u64(out, plan.len() as u64);
        out.push(b'}');
        Ok(())
    })
}

/// `{` and the fields every event has.
fn write_common(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"v\":");
    put_u64(out, u64::from(EVENTS_VERSION));
    out.extend_from_slice(b",\"seq\":");
    put_u64(out, event.seq);
    out.extend_from_slice(b",\"slot\":");
    match event.slot {
        Some(slot) => put_u64(out, slot as u64),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"time_millis\":");
    put(out, &event.time_millis)
}

fn write_unchecked(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    write_common(out, event)?;
    match &event.kind {
        EventKind::PhaseStarted {
            index,
            name,
            attempt,
        } => {
            out.extend_from_slice(b",\"type\":\"phase_started\",\"index\":");
            put_u64(out, *index as u64);
            out.extend_from_slice(b",\"name\":");
            put(out, name.as_str())?;
            out.extend_from_slice(b",\"attempt\":");
            put_u64(out, u64::from(*attempt));
        }
        EventKind::MeasurementSet {
            phase,
            name,
            value,
            points,
            outcome,
            marginal,
            validators,
            units,
        } => {
            out.extend_from_slice(b",\"type\":\"measurement_set\",\"phase\":");
            put(out, &**phase)?;
            out.extend_from_slice(b",\"name\":");
            put(out, &**name)?;
            out.extend_from_slice(b",\"value\":");
            put(out, value)?;
            out.extend_from_slice(b",\"points\":");
            match points {
                Some(n) => put_u64(out, *n as u64),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"outcome\":");
            put(out, outcome)?;
            out.extend_from_slice(if *marginal {
                b",\"marginal\":true,\"validators\":"
            } else {
                b",\"marginal\":false,\"validators\":"
            });
            put(out, validators)?;
            out.extend_from_slice(b",\"units\":");
            put(out, units)?;
        }
        EventKind::Log { record } => {
            out.extend_from_slice(b",\"type\":\"log\",\"level\":");
            put_u64(out, u64::from(record.level));
            out.extend_from_slice(b",\"logger_name\":");
            put(out, record.logger_name.as_str())?;
            out.extend_from_slice(b",\"source\":");
            put(out, record.source.as_str())?;
            out.extend_from_slice(b",\"lineno\":");
            put_u64(out, u64::from(record.lineno));
            out.extend_from_slice(b",\"timestamp_millis\":");
            put(out, &record.timestamp_millis)?;
            out.extend_from_slice(b",\"message\":");
            put(out, record.message.as_str())?;
            if let Some(phase) = &record.phase {
                out.extend_from_slice(b",\"phase\":");
                put(out, phase.as_str())?;
            }
        }
        other => {
            // The kind alone is an object whose first key is `type`: its `{` becomes the
            // comma after the common fields.
            let at = out.len();
            serde_json::to_writer(&mut *out, other)?;
            match out.get_mut(at) {
                Some(brace @ b'{') => *brace = b',',
                _ => return Err(serde::ser::Error::custom("an event kind that is no object")),
            }
            return Ok(());
        }
    }
    out.push(b'}');
    Ok(())
}

fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    serde_json::to_writer(out, value)
}

pub(crate) fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::time::Instant;

    use tofu_core::declare::{at_least, in_range};
    use tofu_core::phase::MeasurementAccessError;
    use tofu_core::prelude::*;
    use tofu_core::unit::VOLT;
    use tofu_core::{Phase, Received};

    use super::*;

    /// Every event of real runs: measurements passing, failing, NaN, infinite, text, bool,
    /// without units, a marginal one, logs with quotes, control characters and non-ASCII
    /// text, a sweep, a failing phase, a phase that errs (the last), a station's slots.
    pub(crate) fn real_events(phases: usize) -> Vec<Arc<Event>> {
        real_events_with(phases, |_| ()).0
    }

    /// [`real_events`], and what `before` returns, given the station's bus before it runs.
    pub(crate) fn real_events_with<T>(
        phases: usize,
        before: impl FnOnce(&Arc<tofu_core::EventBus>) -> T,
    ) -> (Vec<Arc<Event>>, T) {
        let mut list = vec![
            Phase::dynamic("odd \"names\" \\ \u{1}\n é ✓")
                .measure::<f64, _>("nan", at_least(0.0))
                .measure::<f64, _>("inf", at_least(0.0))
                .measure::<f64, _>("neg_inf", at_least(0.0))
                .measure::<String, _>("text", tofu_core::declare::doc("any"))
                .measure::<bool, _>("flag", tofu_core::declare::doc("any"))
                .measure::<f64, _>("margin", in_range(0.0, 10.0).marginal(1.0, 9.0))
                .measure::<f64, _>("tiny", tofu_core::declare::doc("any"))
                .run(|_test, m| {
                    m.get::<f64>("nan")?.set(f64::NAN);
                    m.get::<f64>("inf")?.set(f64::INFINITY);
                    m.get::<f64>("neg_inf")?.set(f64::NEG_INFINITY);
                    m.get::<String>("text")?
                        .set("a \"quoted\"\ttab\u{7f}</script>\u{2028} ✓".to_owned());
                    m.get::<bool>("flag")?.set(true);
                    m.get::<f64>("margin")?.set(0.5);
                    m.get::<f64>("tiny")?.set(1e-300);
                    tracing::warn!(value = 3, "a log \"line\"\n\u{1b}[31m ✓");
                    tracing::info!("another");
                    Ok::<(), MeasurementAccessError>(())
                }),
            Phase::dynamic("fails")
                .measure::<f64, _>("v", in_range(4.5, 5.5).units(VOLT))
                .run(|_test, m| {
                    m.get::<f64>("v")?.set(6.0);
                    Ok::<(), MeasurementAccessError>(())
                }),
        ];
        list.extend((0..phases).map(|i| {
            Phase::dynamic(format!("phase_{i}"))
                .measure::<f64, _>("m", in_range(0.0, 10.0).units(VOLT))
                .measure::<f64, _>("whole", at_least(0.0))
                .run(move |_test, m| {
                    #[allow(clippy::cast_precision_loss)]
                    m.get::<f64>("m")?.set(1.0 + i as f64 / 7.0);
                    m.get::<f64>("whole")?.set(3.0);
                    Ok::<(), MeasurementAccessError>(())
                })
        }));
        // An error ends the run: last.
        list.push(
            Phase::dynamic("errs").run(|_test, _m| -> Result<(), std::io::Error> {
                Err(std::io::Error::other("the \"meter\" is gone"))
            }),
        );
        let mut station = Station::new(2, |_| {
            Test::new("json")
                .phases(list.clone())
                .without_json_output()
                .quiet()
        })
        .quiet();
        let before = before(&station.events());
        let subscription = station.events().subscribe_with_capacity(1 << 20);
        let _ = station.run(|slot| format!("SN\"{}\"", slot.index()));
        let mut events = Vec::new();
        while let Some(received) = subscription.try_recv() {
            if let Received::Event(event) = received {
                events.push(event);
            }
        }
        (events, before)
    }

    #[test]
    fn the_pages_view_of_run_started_has_the_phase_count_for_the_plan() {
        let events = real_events(2);
        let mut checked = 0;
        for event in &events {
            let mut out = Vec::new();
            write_view_event(&mut out, event).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let mut expected = serde_json::to_value(&**event).unwrap();
            if let Some(plan) = expected.as_object_mut().unwrap().remove("plan") {
                let count = plan.as_array().unwrap().len();
                assert!(count > 2, "{count}");
                expected["phase_count"] = count.into();
                checked += 1;
            }
            assert_eq!(got, expected);
        }
        assert_eq!(checked, 2, "one run_started a slot");
    }

    #[test]
    fn the_same_bytes_as_serde_json_for_every_kind_of_a_real_run() {
        let events = real_events(3);
        let mut kinds = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for event in &events {
            out.clear();
            write_event(&mut out, event).unwrap();
            let expected = serde_json::to_string(&**event).unwrap();
            assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
            let parsed: serde_json::Value = serde_json::from_str(&expected).unwrap();
            kinds.insert(parsed["type"].as_str().unwrap().to_owned());
        }
        for kind in [
            "run_started",
            "phase_started",
            "measurement_set",
            "phase_ended",
            "log",
            "run_ended",
            "run_closed",
            "batch_ended",
        ] {
            assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
        }
    }

    #[test]
    fn numbers_of_every_size() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    /// `cargo test --release -p tofu-station json::tests::cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn cost() {
        let events = real_events(5000);
        let mut by_kind: std::collections::BTreeMap<String, Vec<Arc<Event>>> = Default::default();
        for event in events {
            let json: serde_json::Value = serde_json::to_value(&*event).unwrap();
            let kind = json["type"].as_str().unwrap().to_owned();
            by_kind.entry(kind).or_default().push(event);
        }
        let mut out = Vec::new();
        for (kind, events) in &by_kind {
            let rounds = (200_000 / events.len()).clamp(1, 1000);
            let started = Instant::now();
            let mut bytes = 0;
            for _ in 0..rounds {
                for event in events {
                    bytes += serde_json::to_string(&**event).unwrap().len();
                }
            }
            let serde = started.elapsed();
            let started = Instant::now();
            for _ in 0..rounds {
                for event in events {
                    out.clear();
                    write_event(&mut out, event).unwrap();
                }
            }
            let fast = started.elapsed();
            #[allow(clippy::cast_precision_loss)]
            let per = |d: std::time::Duration| d.as_nanos() as f64 / (events.len() * rounds) as f64;
            println!(
                "{kind}: {} events, {} bytes: serde_json::to_string {:.0} ns/event, write_event {:.0} ns/event",
                events.len(),
                bytes / (events.len() * rounds),
                per(serde),
                per(fast)
            );
        }
    }
}
