//! Compares tofu's record with OpenHTF's, field by field in execution order, and explains each
//! difference by a row of the README's table of intentional differences, or not at all.

use serde_json::{Value as Json, json};

use super::tree::{Kind, Node, PhaseSpec, Tree, ValidatorSpec, read_number};

/// The rows of the README's "Intentional differences from OpenHTF" table that a tree can
/// draw, by the id the table shows for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Row {
    /// OpenHTF's JSON keeps an outcome cached before it changed; tofu writes the outcome
    /// OpenHTF itself holds in memory.
    StaleJson,
    /// NaN and infinities always fail in tofu.
    NonFinite,
    /// OpenHTF keeps a measurement marginal once any value set was; tofu judges the last value.
    StickyMarginal,
    /// OpenHTF's `dimension_pivot_validate` has no marginal band; tofu's `.each()` has.
    SweepMarginal,
    /// A sweep point pushed twice at the same coordinates is kept twice in tofu; OpenHTF keeps
    /// the last value at the first position.
    RepeatedPoint,
    /// OpenHTF's `equals("s")` and `matches_regex("...$")` are Python regexes, whose `$` also
    /// matches before a final newline; tofu's `equals` is exact and its `$` is the end.
    FinalNewline,
}

impl Row {
    /// The id the README's table shows.
    pub(super) fn id(self) -> &'static str {
        match self {
            Row::StaleJson => "stale-json",
            Row::NonFinite => "non-finite",
            Row::StickyMarginal => "sticky-marginal",
            Row::SweepMarginal => "sweep-marginal",
            Row::RepeatedPoint => "repeated-point",
            Row::FinalNewline => "final-newline",
        }
    }

    pub(super) const ALL: [Row; 6] = [
        Row::StaleJson,
        Row::NonFinite,
        Row::StickyMarginal,
        Row::SweepMarginal,
        Row::RepeatedPoint,
        Row::FinalNewline,
    ];

    /// Whether the difference changes what follows it (outcomes, the phases run), so that
    /// the rest of the tree can't be judged.
    fn cascades(self) -> bool {
        matches!(
            self,
            Row::NonFinite | Row::RepeatedPoint | Row::FinalNewline
        )
    }
}

/// One field that differs.
#[derive(Debug, Clone)]
pub(super) struct Difference {
    pub(super) path: String,
    pub(super) tofu: Json,
    pub(super) openhtf: Json,
    /// OpenHTF's value in memory, where it is not what its JSON says.
    pub(super) openhtf_in_memory: Option<Json>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: tofu {}, OpenHTF {}",
            self.path, self.tofu, self.openhtf
        )?;
        if let Some(mem) = &self.openhtf_in_memory {
            write!(f, " (in memory {mem})")?;
        }
        Ok(())
    }
}

/// What the comparison of one tree found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    /// Differences explained by a row of the table.
    pub(super) explained: Vec<(Row, Difference)>,
    /// The first difference no row explains (what follows it isn't judged).
    pub(super) unexplained: Option<Difference>,
    /// Fields compared before the judging stopped.
    pub(super) fields: usize,
}

/// tofu's JSON record in the shape `run_trees.py` gives OpenHTF's.
pub(super) fn normalize(record: &Json) -> Json {
    let phases: Vec<Json> = record["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let measurements: Vec<Json> = p["measurements"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, m)| {
                    let mut out = json!({"name": name, "outcome": m["outcome"]});
                    if let Some(v) = m.get("measured_value") {
                        out["value"] = v.clone();
                    }
                    out
                })
                .collect();
            json!({
                "name": p["name"],
                "result": result_name(&p["result"]["phase_result"]),
                "measurements": measurements,
                "outcome": p["outcome"],
                "marginal": p["marginal"],
            })
        })
        .collect();
    let subtests: Vec<Json> = record["subtests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| json!({"name": s["name"], "outcome": s["outcome"]}))
        .collect();
    let details: Vec<Json> = record["outcome_details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| json!({"code": d["code"], "description": d["description"]}))
        .collect();
    json!({
        "phases": phases,
        "subtests": subtests,
        "outcome": record["outcome"],
        "details": details,
        "marginal": record["marginal"],
    })
}

fn result_name(result: &Json) -> String {
    match result {
        Json::Null => "TIMEOUT".into(),
        Json::String(s) if s.is_empty() => "ABORTED".into(),
        Json::String(s) => s.clone(),
        Json::Object(e) => format!("EXCEPTION:{}", e["exc_type"].as_str().unwrap_or("?")),
        other => other.to_string(),
    }
}

/// Numbers by value (OpenHTF writes `3` where tofu writes `3.0`), the rest exactly.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Compares tofu's normalized record with OpenHTF's (as written, and in memory).
pub(super) fn compare(tree: &Tree, tofu: &Json, openhtf: &Json, in_memory: &Json) -> Verdict {
    let mut judge = Judge {
        tree,
        verdict: Verdict::default(),
        stopped: false,
        marginal_explained: false,
    };
    let (ours, theirs, mem) = (&tofu["phases"], &openhtf["phases"], &in_memory["phases"]);
    let count = |v: &Json| v.as_array().map_or(0, Vec::len);
    for i in 0..count(ours).min(count(theirs)) {
        let (o, t, m) = (&ours[i], &theirs[i], &mem[i]);
        let name = t["name"].as_str().unwrap_or("?").to_owned();
        let at = |field: &str| format!("phases[{i}] {name}: {field}");
        judge.field(&at("name"), &o["name"], &t["name"], &m["name"], Some(&name));
        // Measurements before the result: they can change it (stop_on_measurement_fail).
        let (om, tm, mm) = (&o["measurements"], &t["measurements"], &m["measurements"]);
        for j in 0..count(om).min(count(tm)) {
            let mname = tm[j]["name"].as_str().unwrap_or("?");
            for field in ["name", "outcome", "value"] {
                judge.field(
                    &at(&format!("{mname}.{field}")),
                    &om[j][field],
                    &tm[j][field],
                    &mm[j][field],
                    Some(&name),
                );
            }
        }
        judge.field(
            &at("measurement count"),
            &json!(count(om)),
            &json!(count(tm)),
            &json!(count(tm)),
            Some(&name),
        );
        judge.field(
            &at("result"),
            &o["result"],
            &t["result"],
            &m["result"],
            Some(&name),
        );
        judge.field(
            &at("outcome"),
            &o["outcome"],
            &t["outcome"],
            &m["outcome"],
            Some(&name),
        );
        judge.field(
            &at("marginal"),
            &o["marginal"],
            &t["marginal"],
            &m["marginal"],
            Some(&name),
        );
    }
    let names = |v: &Json| -> Json {
        Json::Array(
            v.as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].clone())
                .collect(),
        )
    };
    judge.field(
        "phases (names)",
        &names(ours),
        &names(theirs),
        &names(mem),
        None,
    );
    judge.field(
        "subtests",
        &tofu["subtests"],
        &openhtf["subtests"],
        &in_memory["subtests"],
        None,
    );
    judge.field(
        "outcome",
        &tofu["outcome"],
        &openhtf["outcome"],
        &in_memory["outcome"],
        None,
    );
    judge.field(
        "outcome_details",
        &tofu["details"],
        &openhtf["details"],
        &in_memory["details"],
        None,
    );
    judge.field(
        "marginal",
        &tofu["marginal"],
        &openhtf["marginal"],
        &in_memory["marginal"],
        None,
    );
    judge.verdict
}

struct Judge<'t> {
    tree: &'t Tree,
    verdict: Verdict,
    /// A difference that changes what follows was found: the rest isn't judged.
    stopped: bool,
    /// A phase's marginal flag differs for a reason of the table (the test's may then too).
    marginal_explained: bool,
}

impl Judge<'_> {
    fn field(&mut self, path: &str, tofu: &Json, openhtf: &Json, mem: &Json, phase: Option<&str>) {
        if self.stopped {
            return;
        }
        self.verdict.fields += 1;
        if same(tofu, openhtf) {
            return;
        }
        let difference = Difference {
            path: path.to_owned(),
            tofu: tofu.clone(),
            openhtf: openhtf.clone(),
            openhtf_in_memory: (!same(openhtf, mem)).then(|| mem.clone()),
        };
        if same(tofu, mem) {
            self.verdict.explained.push((Row::StaleJson, difference));
            return;
        }
        match self.explain(path, phase) {
            Some(row) => {
                if row.cascades() {
                    self.stopped = true;
                }
                self.verdict.explained.push((row, difference));
            }
            None => {
                self.stopped = true;
                self.verdict.unexplained = Some(difference);
            }
        }
    }

    /// The row of the table that explains a difference at `path`, if one does.
    fn explain(&mut self, path: &str, phase: Option<&str>) -> Option<Row> {
        let spec = phase.and_then(|name| find_phase(&self.tree.nodes, name));
        if path.ends_with("marginal") {
            let candidates: Vec<&PhaseSpec> = match spec {
                Some(p) => vec![p],
                None if self.marginal_explained && path == "marginal" => {
                    return Some(Row::StickyMarginal);
                }
                None => return None,
            };
            for p in candidates {
                if p.measurements.iter().any(|m| {
                    m.kind == Kind::Sweep
                        && m.validators.iter().any(ValidatorSpec::has_marginal_band)
                }) {
                    self.marginal_explained = true;
                    return Some(Row::SweepMarginal);
                }
                if p.attempts.iter().any(|a| {
                    a.sets
                        .iter()
                        .enumerate()
                        .any(|(i, s)| a.sets[..i].iter().any(|e| e.m == s.m))
                }) {
                    self.marginal_explained = true;
                    return Some(Row::StickyMarginal);
                }
            }
            return None;
        }
        let (spec, measurement) = (spec?, path.rsplit(": ").next()?.split('.').next()?);
        let m = spec.measurements.iter().find(|m| m.name == measurement)?;
        let values = spec
            .attempts
            .iter()
            .flat_map(|a| a.sets.iter().filter(|s| s.m == m.name));
        match m.kind {
            Kind::Number | Kind::Sweep if values.clone().any(|s| non_finite(&s.v)) => {
                Some(Row::NonFinite)
            }
            Kind::Sweep
                if spec.attempts.iter().any(|a| {
                    // Every point the attempt pushes, whatever the call.
                    let rows: Vec<Json> = a
                        .sets
                        .iter()
                        .filter(|s| s.m == m.name)
                        .flat_map(|s| s.v.as_array().cloned().unwrap_or_default())
                        .collect();
                    repeated_coordinates(&rows)
                }) =>
            {
                Some(Row::RepeatedPoint)
            }
            Kind::Text
                if values
                    .clone()
                    .any(|s| s.v.as_str().is_some_and(|t| t.ends_with('\n'))) =>
            {
                Some(Row::FinalNewline)
            }
            _ => None,
        }
    }
}

fn non_finite(v: &Json) -> bool {
    match v {
        Json::Array(rows) => rows.iter().any(non_finite),
        other => !read_number(other).is_finite(),
    }
}

fn repeated_coordinates(rows: &[Json]) -> bool {
    rows.iter().enumerate().any(|(i, r)| {
        let key = |r: &Json| r.as_array().map(|r| r[..r.len() - 1].to_vec());
        rows[..i].iter().any(|e| key(e) == key(r))
    })
}

pub(super) fn find_phase<'t>(nodes: &'t [Node], name: &str) -> Option<&'t PhaseSpec> {
    nodes.iter().find_map(|n| match n {
        Node::Phase(p) => (p.name == name).then_some(p),
        Node::Group(g) => find_phase(&g.setup, name)
            .or_else(|| find_phase(&g.main, name))
            .or_else(|| find_phase(&g.teardown, name)),
        Node::Subtest(s) => find_phase(&s.nodes, name),
    })
}

/// The judge itself: equal records agree, a changed outcome is caught, and a row explains a
/// difference only when the tree drew its case.
#[test]
fn the_comparison_catches_differences_and_explains_only_drawn_cases() {
    use super::tree::{Attempt, End, MeasurementSpec, PhaseSpec, Set};
    let tree = |value: Json| Tree {
        id: 0,
        stop_on_first_failure: false,
        nodes: vec![Node::Phase(PhaseSpec {
            name: "p1".into(),
            repeat_limit: None,
            repeat_on_measurement_fail: false,
            stop_on_measurement_fail: false,
            measurements: vec![MeasurementSpec {
                name: "m0".into(),
                kind: Kind::Number,
                dims: 0,
                allow_fail: false,
                precision: None,
                validators: vec![],
            }],
            attempts: vec![Attempt {
                sets: vec![Set {
                    m: "m0".into(),
                    v: value,
                }],
                end: End::Continue,
            }],
        })],
    };
    let record = |m: &str, phase: &str, test: &str| {
        json!({
            "phases": [{"name": "p1", "result": "CONTINUE", "outcome": phase, "marginal": null,
                        "measurements": [{"name": "m0", "outcome": m, "value": 1.0}]}],
            "subtests": [], "outcome": test, "details": [], "marginal": null,
        })
    };
    let pass = record("PASS", "PASS", "PASS");
    let fail = record("FAIL", "FAIL", "FAIL");
    let finite = tree(json!(1.0));
    let verdict = compare(&finite, &pass, &pass, &pass);
    assert!(verdict.unexplained.is_none() && verdict.explained.is_empty());
    assert!(verdict.fields > 5);
    // A different measurement outcome, with a finite value: no row explains it.
    let verdict = compare(&finite, &fail, &pass, &pass);
    let difference = verdict.unexplained.expect("caught");
    assert_eq!(difference.path, "phases[0] p1: m0.outcome");
    // The same with NaN drawn: `non-finite`, and the rest of the tree is not judged.
    let verdict = compare(&tree(json!("nan")), &fail, &pass, &pass);
    assert!(verdict.unexplained.is_none());
    assert_eq!(verdict.explained.len(), 1);
    assert_eq!(verdict.explained[0].0, Row::NonFinite);
    // OpenHTF's JSON stale where its memory agrees with tofu: `stale-json`, judging goes on.
    let stale = record("UNSET", "PASS", "PASS");
    let verdict = compare(&finite, &pass, &stale, &pass);
    assert_eq!(verdict.explained.len(), 1);
    assert_eq!(verdict.explained[0].0, Row::StaleJson);
    let verdict = compare(&finite, &record("PASS", "PASS", "FAIL"), &stale, &pass);
    assert_eq!(verdict.unexplained.expect("caught").path, "outcome");
}
