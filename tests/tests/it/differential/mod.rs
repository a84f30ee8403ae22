//! OpenHTF 1.6.3 as the judge of outcomes: random test trees (phases returning each result,
//! errors and panics, measurements of each kind with each validator, marginal bands,
//! precision, allow_fail, groups with teardowns, nested subtests, repeats and repeat limits,
//! the stop options) drawn from a seed, run in tofu and in OpenHTF, compared field by field:
//! every phase's name, result, outcome and marginal flag, every measurement's outcome and
//! stored value, the subtests, the test's outcome, details and marginal flag. A difference
//! fails the test unless a row of the README's table of intentional differences explains it.
//!
//! `TOFU_DIFF_SEED` and `TOFU_DIFF_TREES` draw other trees (RELIABILITY.md); OpenHTF is
//! installed into `target/openhtf-1.6.3-venv` the first time.

mod compare;
mod openhtf;
mod tofu_side;
mod tree;

use std::collections::BTreeMap;

use compare::Row;

/// The trees CI runs: the same every time.
const SEED: u64 = 0x7f0_2026_1203;
const TREES: usize = 300;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text:?} is not a whole number: {e}")),
    )
}

#[test]
fn tofu_and_openhtf_agree_on_random_trees() {
    let Some(python) = openhtf::python("differential::tofu_and_openhtf_agree_on_random_trees")
    else {
        return;
    };
    let seed = env_number("TOFU_DIFF_SEED").unwrap_or(SEED);
    let count = env_number("TOFU_DIFF_TREES").map_or(TREES, |n| n as usize);
    let trees = tree::generate(seed, count);
    let started = std::time::Instant::now();
    let theirs = openhtf::run_trees(&python, &trees);
    let openhtf_time = started.elapsed();

    let started = std::time::Instant::now();
    let mut explained: BTreeMap<Row, usize> = BTreeMap::new();
    let mut trees_with = BTreeMap::<Row, usize>::new();
    let (mut fields, mut phase_records) = (0, 0);
    let mut failures = Vec::new();
    for (tree, openhtf) in trees.iter().zip(&theirs) {
        let record = tofu_side::run(tree);
        let ours = compare::normalize(&record);
        phase_records += ours["phases"].as_array().map_or(0, Vec::len);
        let verdict = compare::compare(tree, &ours, &openhtf.json, &openhtf.in_memory);
        fields += verdict.fields;
        let mut rows: Vec<Row> = verdict.explained.iter().map(|(r, _)| *r).collect();
        for row in &rows {
            *explained.entry(*row).or_default() += 1;
        }
        rows.dedup();
        for row in rows {
            *trees_with.entry(row).or_default() += 1;
        }
        if let Some(difference) = verdict.unexplained {
            failures.push((tree, difference, ours, openhtf.json.clone()));
        }
    }
    let tofu_time = started.elapsed();
    if let Ok(path) = std::env::var("TOFU_DIFF_DUMP") {
        let lines: Vec<String> = failures
            .iter()
            .map(|(tree, d, ours, theirs)| {
                serde_json::json!({"tree": tree, "path": d.path, "difference": d.to_string(), "tofu": ours, "openhtf": theirs})
                    .to_string()
            })
            .collect();
        std::fs::write(&path, lines.join("\n")).expect("write TOFU_DIFF_DUMP");
    }

    println!(
        "differential: seed {seed}, {count} trees, {phase_records} phase records, {fields} fields compared; \
         OpenHTF {:.1} s, tofu {:.1} s",
        openhtf_time.as_secs_f64(),
        tofu_time.as_secs_f64()
    );
    for (row, n) in &explained {
        println!(
            "  explained by `{}`: {n} differences in {} trees",
            row.id(),
            trees_with[row]
        );
    }
    println!("  unexplained: {} trees", failures.len());
    let shown: Vec<String> = failures
        .iter()
        .take(3)
        .map(|(tree, difference, ours, theirs)| {
            format!(
                "tree {}: {difference}\ntree: {}\ntofu: {}\nOpenHTF: {}",
                tree.id,
                serde_json::to_string(tree).unwrap_or_default(),
                ours,
                theirs
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} trees (seed {seed}) differ from OpenHTF for no reason in the README's table; \
         the first:\n{}\nall: {:?}",
        failures.len(),
        shown.join("\n\n"),
        failures
            .iter()
            .map(|(t, d, _, _)| format!("tree {}: {}", t.id, d.path))
            .collect::<Vec<_>>()
    );
}

/// Every row the comparison may explain a difference with is in the README's table, with its
/// reason; and the table has no row the comparison doesn't know (or says it is not drawn).
#[test]
fn the_readme_lists_every_intentional_difference() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let table: Vec<&str> = readme
        .split("## Intentional differences from OpenHTF")
        .nth(1)
        .expect("README has a section `## Intentional differences from OpenHTF`")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    for row in Row::ALL {
        let id = format!("| `{}` |", row.id());
        assert!(
            table.iter().any(|l| l.starts_with(&id)),
            "the README's table has no row {id}"
        );
    }
    for line in table.iter().skip(2) {
        let id = line.split('`').nth(1).unwrap_or_default();
        assert!(
            Row::ALL.iter().any(|r| r.id() == id) || line.contains("not drawn"),
            "README row `{id}` is not a row the differential test knows, nor says it is not drawn: {line}"
        );
    }
}
