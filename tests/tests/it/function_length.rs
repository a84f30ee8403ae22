//! No function of tofu-core is longer than about 80 lines (issue 12): a long one is split along
//! its meaning. Generated code (`unit/table.rs`) and the unit tests at the end of a file
//! (`#[cfg(test)]`) are left out. The code is formatted by rustfmt, so a function ends at the
//! first line that is its closing brace at its own indentation.

use std::path::PathBuf;

use crate::example_binaries::workspace_root;

/// The longest a function may be, its signature and closing brace included.
const MAX_LINES: usize = 80;

/// Files of generated code.
const GENERATED: &[&str] = &["unit/table.rs"];

/// Every function in `text` longer than `max` lines: (name, first line from 1, lines).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // The unit tests close the file.
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let Some(name) = function_name(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let end = if line.trim_end().ends_with('}') || line.trim_end().ends_with(';') {
            Some(i) // `fn a() {}`, or a declaration without a body
        } else {
            lines[i + 1..].iter().enumerate().find_map(|(k, l)| {
                let at_indent = l.strip_prefix(indent).is_some_and(|rest| {
                    !rest.starts_with(char::is_whitespace) && rest.trim_end().ends_with(';')
                });
                (*l == format!("{indent}}}") || at_indent).then_some(i + 1 + k)
            })
        };
        let count = end.map_or(lines.len() - i, |end| end - i + 1);
        if count > max {
            long.push((name, i + 1, count));
        }
    }
    long
}

/// The function a line declares, if it begins one.
fn function_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
        "extern \"C\" ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_function_of_tofu_core_is_longer_than_80_lines() {
    let src = workspace_root().join("tofu-core/src");
    let mut long = Vec::new();
    let mut sources: Vec<PathBuf> = crate::layers::files(&src)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    sources.sort();
    for path in sources {
        let relative = path.strip_prefix(&src).unwrap().to_string_lossy();
        if GENERATED.contains(&relative.as_ref()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, line, count) in long_functions(&text, MAX_LINES) {
            long.push(format!(
                "tofu-core/src/{relative}:{line}: `{name}` has {count} lines"
            ));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines (split them along their meaning):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_check_finds_a_long_function() {
    let body = "        let x = 1;\n".repeat(MAX_LINES);
    let text = format!(
        "fn short() {{}}\n\nimpl A {{\n    pub(crate) fn long(\n        a: u32,\n    ) -> u32 {{\n{body}    }}\n\n    fn declared(&self);\n}}\n"
    );
    assert_eq!(
        long_functions(&text, MAX_LINES),
        [("long".to_owned(), 4, MAX_LINES + 4)]
    );
    // Its unit tests are left out.
    let tested = format!("#[cfg(test)]\nmod tests {{\n{text}}}\n");
    assert!(long_functions(&tested, MAX_LINES).is_empty());
}
