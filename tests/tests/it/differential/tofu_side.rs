//! Runs a tree in tofu: each phase of the tree becomes a phase built at run time
//! (`Phase::dynamic`) whose measurements, limits and script come from the tree, run by the real
//! executor. The record is then read as JSON, as any reader of tofu's records would.

use std::sync::Arc;

use serde_json::Value as Json;
use tofu_core::declare::{
    self, Spec, at_least, at_most, class, dimensions, equals, equals_json, in_range, matches_regex,
    within_percent,
};
use tofu_core::measurement::Json as JsonKind;
use tofu_core::phase::DynamicMeasurements;
use tofu_core::prelude::*;
use tofu_core::unit::{OHM, SECOND, VOLT};
use tofu_core::{Phase, PhaseResult};

use super::tree::{
    End, GroupSpec, Kind, MeasurementSpec, Node, PhaseSpec, Tree, ValidatorSpec, read_number,
};

/// A phase's error; OpenHTF's side raises `RuntimeError`.
#[derive(Debug)]
struct RuntimeError(String);

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs the tree and returns tofu's JSON record.
pub(super) fn run(tree: &Tree) -> Json {
    let mut test = Test::new("differential")
        .quiet()
        .without_json_output()
        .phases(tree.nodes.iter().map(node));
    if tree.stop_on_first_failure {
        test = test.stop_on_first_failure();
    }
    let execution = test.execute(|| "DIFF-0001");
    serde_json::to_value(&execution.record).expect("a record is JSON")
}

fn node(n: &Node) -> PhaseNode {
    match n {
        Node::Phase(p) => phase(p).into(),
        Node::Group(g) => group(g).into(),
        Node::Subtest(s) => Subtest::new(s.name.clone(), s.nodes.iter().map(node)).into(),
    }
}

fn group(g: &GroupSpec) -> PhaseGroup {
    PhaseGroup::new(g.name.clone())
        .setup(g.setup.iter().map(node))
        .main(g.main.iter().map(node))
        .teardown(g.teardown.iter().map(node))
}

fn phase(spec: &PhaseSpec) -> Phase {
    let mut builder = Phase::dynamic(spec.name.clone());
    builder = crate::support::with_flow_options(
        builder,
        spec.repeat_limit,
        spec.repeat_on_measurement_fail,
        spec.stop_on_measurement_fail,
    );
    for m in &spec.measurements {
        builder = match (m.kind, m.dims) {
            (Kind::Number, _) => builder.measure::<f64, _>(&m.name, number_spec(m)),
            (Kind::Text, _) => match text_spec(m) {
                Some(spec) => builder.measure::<String, _>(&m.name, with_allow_fail(m, spec)),
                None => {
                    builder.measure::<String, _>(&m.name, with_allow_fail(m, declare::doc("text")))
                }
            },
            (Kind::Bool, _) => match m.validators.first() {
                Some(ValidatorSpec::Equals(b)) => builder.measure::<bool, _>(
                    &m.name,
                    with_allow_fail(m, equals(b.as_bool().unwrap_or(false))),
                ),
                _ => builder.measure::<bool, _>(&m.name, with_allow_fail(m, declare::doc("bool"))),
            },
            (Kind::Json, _) => match m.validators.first() {
                Some(ValidatorSpec::Equals(v)) => builder
                    .measure::<JsonKind, _>(&m.name, with_allow_fail(m, equals_json(v.clone()))),
                _ => builder
                    .measure::<JsonKind, _>(&m.name, with_allow_fail(m, declare::doc("json"))),
            },
            (Kind::Sweep, 1) => {
                let mut spec = dimensions([SECOND]).units(OHM);
                for v in &m.validators {
                    spec = spec.each(number_validator(v));
                }
                builder.measure::<Sweep<1>, _>(&m.name, with_allow_fail(m, spec))
            }
            (Kind::Sweep, _) => {
                let mut spec = dimensions([SECOND, VOLT]).units(OHM);
                for v in &m.validators {
                    spec = spec.each(number_validator(v));
                }
                builder.measure::<Sweep<2>, _>(&m.name, with_allow_fail(m, spec))
            }
        };
    }
    let spec = Arc::new(spec.clone());
    builder.run(move |test, m| body(&spec, test.attempt(), m))
}

fn with_allow_fail<C>(m: &MeasurementSpec, spec: Spec<C>) -> Spec<C> {
    if m.allow_fail {
        spec.allow_fail()
    } else {
        spec
    }
}

fn number_validator(v: &ValidatorSpec) -> Spec<class::Number> {
    match v {
        ValidatorSpec::InRange {
            min,
            max,
            mmin,
            mmax,
        } => {
            let mut spec = match (min, max) {
                (Some(lo), Some(hi)) => in_range(*lo, *hi),
                (Some(lo), None) => at_least(*lo),
                (None, Some(hi)) => at_most(*hi),
                (None, None) => unreachable!("the generator gives a bound"),
            };
            if let Some(m) = mmin {
                spec = spec.marginal_minimum(*m);
            }
            if let Some(m) = mmax {
                spec = spec.marginal_maximum(*m);
            }
            spec
        }
        ValidatorSpec::WithinPercent {
            expected,
            percent,
            marginal,
        } => {
            let spec = within_percent(*expected, *percent);
            match marginal {
                Some(m) => spec.marginal_percent(*m),
                None => spec,
            }
        }
        ValidatorSpec::Equals(n) => equals(read_number(n)),
        ValidatorSpec::Regex(_) => unreachable!("not a number validator"),
    }
}

fn number_spec(m: &MeasurementSpec) -> Spec<class::Number> {
    let mut spec = declare::units(VOLT);
    for v in &m.validators {
        spec = spec.and(number_validator(v));
    }
    if let Some(p) = m.precision {
        spec = spec.precision(p);
    }
    with_allow_fail(m, spec)
}

fn text_spec(m: &MeasurementSpec) -> Option<Spec<class::Text>> {
    m.validators
        .iter()
        .map(|v| match v {
            ValidatorSpec::Equals(s) => equals(s.as_str().unwrap_or_default()),
            ValidatorSpec::Regex(r) => matches_regex(r),
            _ => unreachable!("not a text validator"),
        })
        .reduce(|a, b| a.and(b))
}

fn body(
    spec: &PhaseSpec,
    attempt: u32,
    m: &mut DynamicMeasurements<'_>,
) -> Result<PhaseResult, RuntimeError> {
    let script = spec.attempt(attempt);
    let wrong = |e: tofu_core::phase::MeasurementAccessError| RuntimeError(e.to_string());
    for set in &script.sets {
        let Some(decl) = spec.measurements.iter().find(|d| d.name == set.m) else {
            return Err(RuntimeError(format!("no measurement {}", set.m)));
        };
        match (decl.kind, decl.dims) {
            (Kind::Number, _) => m
                .get::<f64>(&set.m)
                .map_err(wrong)?
                .set(read_number(&set.v)),
            (Kind::Text, _) => m
                .get::<String>(&set.m)
                .map_err(wrong)?
                .set(set.v.as_str().unwrap_or_default()),
            (Kind::Bool, _) => m
                .get::<bool>(&set.m)
                .map_err(wrong)?
                .set(set.v.as_bool().unwrap_or_default()),
            (Kind::Json, _) => m.get::<JsonKind>(&set.m).map_err(wrong)?.set(set.v.clone()),
            (Kind::Sweep, 1) => {
                let mut sweep = m.get::<Sweep<1>>(&set.m).map_err(wrong)?;
                for row in rows(&set.v) {
                    sweep.push([row[0]], row[1]);
                }
            }
            (Kind::Sweep, _) => {
                let mut sweep = m.get::<Sweep<2>>(&set.m).map_err(wrong)?;
                for row in rows(&set.v) {
                    sweep.push([row[0], row[1]], row[2]);
                }
            }
        }
    }
    Ok(match script.end {
        End::Continue => PhaseResult::Continue,
        End::FailAndContinue => PhaseResult::FailAndContinue,
        End::Repeat => PhaseResult::Repeat,
        End::Skip => PhaseResult::Skip,
        End::Stop => PhaseResult::Stop,
        End::FailSubtest => PhaseResult::FailSubtest,
        End::Error => return Err(RuntimeError("boom".into())),
        End::Panic => panic!("boom"),
    })
}

fn rows(v: &Json) -> Vec<Vec<f64>> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|r| r.iter().map(read_number).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}
