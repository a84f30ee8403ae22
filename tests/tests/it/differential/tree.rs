//! Test trees as data, and the seeded generator that draws them.
//!
//! The same JSON drives both sides: `tofu_side.rs` builds tofu phases from it, and
//! `tests/openhtf/run_trees.py` builds OpenHTF phases from it.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::mutate::Rng;

/// One test: nodes run in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Tree {
    pub(super) id: usize,
    pub(super) stop_on_first_failure: bool,
    pub(super) nodes: Vec<Node>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Node {
    Phase(PhaseSpec),
    Group(GroupSpec),
    Subtest(SubtestSpec),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GroupSpec {
    pub(super) name: String,
    pub(super) setup: Vec<Node>,
    pub(super) main: Vec<Node>,
    pub(super) teardown: Vec<Node>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SubtestSpec {
    pub(super) name: String,
    pub(super) nodes: Vec<Node>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PhaseSpec {
    pub(super) name: String,
    pub(super) repeat_limit: Option<u32>,
    pub(super) repeat_on_measurement_fail: bool,
    pub(super) stop_on_measurement_fail: bool,
    pub(super) measurements: Vec<MeasurementSpec>,
    /// What each attempt does; attempts past the last do what the last does.
    pub(super) attempts: Vec<Attempt>,
}

impl PhaseSpec {
    /// The script of attempt `n` (1-based).
    pub(super) fn attempt(&self, n: u32) -> &Attempt {
        let i = (n.max(1) as usize - 1).min(self.attempts.len() - 1);
        &self.attempts[i]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Number,
    Text,
    Bool,
    /// Structured data (lists, maps), checked with `equals_json`.
    Json,
    Sweep,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MeasurementSpec {
    pub(super) name: String,
    pub(super) kind: Kind,
    /// Coordinates per point of a sweep (1 or 2).
    pub(super) dims: usize,
    pub(super) allow_fail: bool,
    pub(super) precision: Option<i32>,
    /// For sweeps, each validator applies to every value.
    pub(super) validators: Vec<ValidatorSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ValidatorSpec {
    InRange {
        min: Option<f64>,
        max: Option<f64>,
        mmin: Option<f64>,
        mmax: Option<f64>,
    },
    WithinPercent {
        expected: f64,
        percent: f64,
        marginal: Option<f64>,
    },
    /// A number, a string or a boolean.
    Equals(Json),
    Regex(String),
}

impl ValidatorSpec {
    pub(super) fn has_marginal_band(&self) -> bool {
        match self {
            ValidatorSpec::InRange { mmin, mmax, .. } => mmin.is_some() || mmax.is_some(),
            ValidatorSpec::WithinPercent { marginal, .. } => marginal.is_some(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Attempt {
    pub(super) sets: Vec<Set>,
    pub(super) end: End,
}

/// Sets measurement `m` to `v`: a number (`"nan"`, `"inf"`, `"-inf"` as strings), a string, a
/// boolean, or for a sweep a list of points `[c1, (c2,) value]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Set {
    pub(super) m: String,
    pub(super) v: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum End {
    Continue,
    FailAndContinue,
    Repeat,
    Skip,
    Stop,
    FailSubtest,
    Error,
    Panic,
}

/// A number as the trees write it: non-finite numbers as OpenHTF writes them.
pub(super) fn number(v: f64) -> Json {
    if v.is_nan() {
        json!("nan")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(v)
    }
}

/// Reads back [`number`].
pub(super) fn read_number(v: &Json) -> f64 {
    match v {
        Json::String(s) => s.parse().unwrap_or(f64::NAN),
        other => other.as_f64().unwrap_or(f64::NAN),
    }
}

/// Draws `count` trees from `seed`.
pub(super) fn generate(seed: u64, count: usize) -> Vec<Tree> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|id| Generator::new(&mut rng).tree(id))
        .collect()
}

struct Generator<'r> {
    rng: &'r mut Rng,
    phases: usize,
    groups: usize,
    subtests: usize,
}

/// A probability in percent.
fn chance(rng: &mut Rng, percent: usize) -> bool {
    rng.below(100) < percent
}

impl<'r> Generator<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        Generator {
            rng,
            phases: 0,
            groups: 0,
            subtests: 0,
        }
    }

    fn tree(&mut self, id: usize) -> Tree {
        let count = 1 + self.rng.below(5);
        Tree {
            id,
            stop_on_first_failure: chance(self.rng, 8),
            nodes: self.nodes(count, 0, false),
        }
    }

    fn nodes(&mut self, count: usize, depth: usize, in_subtest: bool) -> Vec<Node> {
        (0..count).map(|_| self.node(depth, in_subtest)).collect()
    }

    fn node(&mut self, depth: usize, in_subtest: bool) -> Node {
        let roll = if depth >= 3 { 0 } else { self.rng.below(100) };
        if roll >= 82 {
            self.subtests += 1;
            let name = format!("s{}", self.subtests);
            let count = self.rng.below(4);
            Node::Subtest(SubtestSpec {
                name,
                nodes: self.nodes(count, depth + 1, true),
            })
        } else if roll >= 64 {
            self.groups += 1;
            let name = format!("g{}", self.groups);
            let (s, m, t) = (self.rng.below(3), self.rng.below(3), self.rng.below(3));
            Node::Group(GroupSpec {
                name,
                setup: self.nodes(s, depth + 1, in_subtest),
                main: self.nodes(m, depth + 1, in_subtest),
                teardown: self.nodes(t, depth + 1, in_subtest),
            })
        } else {
            Node::Phase(self.phase(in_subtest))
        }
    }

    fn phase(&mut self, in_subtest: bool) -> PhaseSpec {
        self.phases += 1;
        let name = format!("p{}", self.phases);
        let measurements: Vec<MeasurementSpec> = (0..self.rng.below(4))
            .map(|i| self.measurement(i))
            .collect();
        let attempts = (0..1 + self.rng.below(3))
            .map(|_| self.attempt(&measurements, in_subtest))
            .collect();
        PhaseSpec {
            name,
            repeat_limit: if chance(self.rng, 50) {
                None
            } else {
                Some(1 + self.rng.below(4) as u32)
            },
            repeat_on_measurement_fail: chance(self.rng, 15),
            stop_on_measurement_fail: chance(self.rng, 8),
            measurements,
            attempts,
        }
    }

    fn measurement(&mut self, i: usize) -> MeasurementSpec {
        let roll = self.rng.below(100);
        let kind = match roll {
            0..50 => Kind::Number,
            50..64 => Kind::Text,
            64..74 => Kind::Bool,
            74..80 => Kind::Json,
            _ => Kind::Sweep,
        };
        let validators = match kind {
            Kind::Number | Kind::Sweep => (0..self.rng.below(3))
                .map(|_| self.number_validator())
                .collect(),
            Kind::Text => (0..self.rng.below(3))
                .map(|_| {
                    if chance(self.rng, 50) {
                        ValidatorSpec::Equals(json!(self.rng.pick(&["1.2.3", "SN123"])))
                    } else {
                        ValidatorSpec::Regex(
                            (*self.rng.pick(&[r"^SN\d{3}$", r"SN\d", r"1\.2"])).into(),
                        )
                    }
                })
                .collect(),
            Kind::Bool => (0..self.rng.below(2))
                .map(|_| ValidatorSpec::Equals(json!(chance(self.rng, 70))))
                .collect(),
            Kind::Json => (0..self.rng.below(2))
                .map(|_| ValidatorSpec::Equals(self.json_value()))
                .collect(),
        };
        MeasurementSpec {
            name: format!("m{i}"),
            kind,
            dims: if kind == Kind::Sweep {
                1 + self.rng.below(2)
            } else {
                0
            },
            allow_fail: chance(self.rng, 12),
            precision: (kind == Kind::Number && chance(self.rng, 15))
                .then(|| self.rng.below(4) as i32),
            validators,
        }
    }

    /// Limits with round and awkward numbers, so values can sit exactly on them.
    fn limit(&mut self) -> f64 {
        *self.rng.pick(&[
            0.0, 0.1, 0.13, 0.5, 1.0, 2.5, 3.3, 5.0, 10.0, 25.0, 100.0, -1.0, -2.5,
        ])
    }

    fn number_validator(&mut self) -> ValidatorSpec {
        match self.rng.below(10) {
            0..6 => {
                let (mut lo, mut hi) = (self.limit(), self.limit());
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                let (min, max) = match self.rng.below(5) {
                    0 => (Some(lo), None),
                    1 => (None, Some(hi)),
                    _ => (Some(lo), Some(hi)),
                };
                let span = hi - lo;
                let mmin = min
                    .filter(|_| span > 0.0 && chance(self.rng, 35))
                    .map(|lo| lo + span / 4.0);
                let mmax = max
                    .filter(|_| span > 0.0 && chance(self.rng, 35))
                    .map(|hi| hi - span / 4.0);
                ValidatorSpec::InRange {
                    min,
                    max,
                    mmin,
                    mmax,
                }
            }
            6..9 => {
                let percent = *self.rng.pick(&[1.0, 5.0, 10.0, 12.5, 50.0]);
                ValidatorSpec::WithinPercent {
                    expected: *self.rng.pick(&[25.0, 3.3, 1.0, 100.0, -5.0, 0.7]),
                    percent,
                    marginal: chance(self.rng, 40).then_some(percent / 2.0),
                }
            }
            _ => ValidatorSpec::Equals(json!(self.limit())),
        }
    }

    /// A value near the measurement's limits: on them, just inside or outside, in the marginal
    /// bands, values that round differently at a precision, and now and then NaN or infinity.
    fn number_value(&mut self, validators: &[ValidatorSpec]) -> f64 {
        let mut points = vec![0.0, 0.125, 0.135, 2.675, 1.5, 2.5, 7.0, 1e300, -1e300];
        for v in validators {
            match v {
                ValidatorSpec::InRange {
                    min,
                    max,
                    mmin,
                    mmax,
                } => points.extend([*min, *max, *mmin, *mmax].into_iter().flatten()),
                ValidatorSpec::WithinPercent {
                    expected,
                    percent,
                    marginal,
                } => {
                    // As OpenHTF computes its bounds, so a value can be exactly on them.
                    let band = (expected * percent / 100.0).abs();
                    points.extend([expected - band, expected + band, *expected]);
                    if let Some(m) = marginal {
                        let mband = (expected * m / 100.0).abs();
                        points.extend([expected - mband, expected + mband]);
                    }
                }
                ValidatorSpec::Equals(n) => points.push(read_number(n)),
                ValidatorSpec::Regex(_) => {}
            }
        }
        let base = *self.rng.pick(&points);
        match self.rng.below(100) {
            0..2 => f64::NAN,
            2..3 => f64::INFINITY,
            3..40 => base,
            40..55 => base + 0.001,
            55..70 => base - 0.001,
            70..80 => base + 0.005,
            _ => *self.rng.pick(&points) / 2.0 + *self.rng.pick(&points) / 2.0,
        }
    }

    /// Lists and maps, some equal but for integers written as floats.
    fn json_value(&mut self) -> Json {
        match self.rng.below(6) {
            0 => json!([1, 2, 3]),
            1 => json!([1.0, 2.0, 3.0]),
            2 => json!({"rail": "3V3", "ok": true}),
            3 => json!({"ok": true, "rail": "3V3"}),
            4 => json!([[0, 1], [1, 0.5]]),
            _ => json!([]),
        }
    }

    fn value(&mut self, m: &MeasurementSpec) -> Json {
        match m.kind {
            Kind::Number => number(self.number_value(&m.validators)),
            Kind::Text => json!(self.rng.pick(&[
                "1.2.3", "1.2.4", "SN123", "SN12", "SN1234", "xSN123", "1.2.3\n"
            ])),
            Kind::Bool => json!(chance(self.rng, 60)),
            Kind::Json => self.json_value(),
            Kind::Sweep => {
                let points = self.rng.below(4);
                let mut x = 0.0;
                let rows: Vec<Json> = (0..points)
                    .map(|_| {
                        // Now and then a point at the coordinates of the one before.
                        if !chance(self.rng, 2) {
                            x += 1.0;
                        }
                        let mut row = vec![json!(x)];
                        if m.dims == 2 {
                            row.push(json!(x * 10.0));
                        }
                        row.push(number(self.number_value(&m.validators)));
                        Json::Array(row)
                    })
                    .collect();
                Json::Array(rows)
            }
        }
    }

    fn attempt(&mut self, measurements: &[MeasurementSpec], in_subtest: bool) -> Attempt {
        let mut sets = Vec::new();
        for m in measurements {
            if chance(self.rng, 25) {
                continue;
            }
            let times = if chance(self.rng, 10) { 2 } else { 1 };
            for _ in 0..times {
                sets.push(Set {
                    m: m.name.clone(),
                    v: self.value(m),
                });
            }
        }
        let fail_subtest = if in_subtest { 12 } else { 2 };
        let roll = self.rng.below(100);
        let end = if roll < fail_subtest {
            End::FailSubtest
        } else {
            match self.rng.below(100) {
                0..50 => End::Continue,
                50..59 => End::FailAndContinue,
                59..73 => End::Repeat,
                73..82 => End::Skip,
                82..88 => End::Stop,
                88..95 => End::Error,
                _ => End::Panic,
            }
        };
        Attempt { sets, end }
    }
}
