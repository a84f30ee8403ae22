//! The crates' modules import one way. In tofu-core, each module's layer is the comment above
//! its `mod` line in `lib.rs` (values, the plan, the run, outputs, the front): a module may use
//! its own layer and those above it, never one below. In every crate, no two modules use each
//! other, directly or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::example_binaries::workspace_root;

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
pub(crate) fn files(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap();
                let first = relative.components().next().unwrap().as_os_str();
                let module = Path::new(first)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((module, path));
            }
        }
    }
    out
}

/// The top-level modules a file's code uses (`crate::x`), its tests left out.
fn uses(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(&text)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            used.insert(name);
        }
        // `use crate::{a, b::c}`
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// Module → the modules it uses, for one crate (`lib.rs` and `main.rs` left out: they only
/// declare and re-export).
fn graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace_root().join(krate).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files(&src) {
        if ["lib", "main", "bin"].contains(&module.as_str()) {
            continue;
        }
        let used = uses(&path);
        graph
            .entry(module.clone())
            .or_default()
            .extend(used.into_iter().filter(|u| *u != module));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for used in graph.values_mut() {
        used.retain(|u| modules.contains(u));
    }
    graph
}

/// A cycle of modules, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_a_loop_of_modules() {
    for krate in [
        "tofu-core",
        "tofu-upload",
        "tofu-report",
        "tofu-macros",
        "tofu-station",
    ] {
        if !workspace_root().join(krate).join("src").is_dir() {
            continue;
        }
        let graph = graph(krate);
        assert!(!graph.is_empty(), "{krate}: no modules found");
        if let Some(cycle) = cycle(&graph) {
            panic!("{krate}: modules use each other: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn tofu_core_imports_one_way_through_its_layers() {
    let lib = std::fs::read_to_string(workspace_root().join("tofu-core/src/lib.rs")).unwrap();
    let mut layer_of = BTreeMap::new();
    let mut layers: Vec<String> = Vec::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("// ")
            && ["values", "the plan", "the run", "outputs", "the front"].contains(&name)
        {
            layers.push(name.to_owned());
        } else if let Some(rest) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            && let Some(name) = rest.strip_suffix(';')
        {
            assert!(
                !layers.is_empty(),
                "mod {name} comes before the first layer comment"
            );
            layer_of.insert(name.to_owned(), layers.len() - 1);
        }
    }
    assert_eq!(layers.len(), 5, "lib.rs names the five layers: {layers:?}");
    let mut wrong = Vec::new();
    for (module, used) in graph("tofu-core") {
        let Some(&mine) = layer_of.get(&module) else {
            wrong.push(format!("{module} is in no layer of lib.rs"));
            continue;
        };
        for u in used {
            if let Some(&theirs) = layer_of.get(&u)
                && theirs > mine
            {
                wrong.push(format!(
                    "{module} ({}) uses {u} ({})",
                    layers[mine], layers[theirs]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// The check finds what it is for: a loop, and a module using a layer below its own.
#[test]
fn the_checks_find_a_loop() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap().len(), 4);
    let mut fine = graph.clone();
    fine.get_mut("c").unwrap().clear();
    assert!(cycle(&fine).is_none());
}
