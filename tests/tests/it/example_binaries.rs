//! The examples' executables, built once per test binary. Shared by this package's tests and
//! tofu-upload's (which include this file with `#[path]`): both packages sit one level below the
//! workspace root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The workspace's root folder.
pub(crate) fn workspace_root() -> PathBuf {
    let package_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    package_dir.parent().unwrap_or(package_dir).to_path_buf()
}

/// The examples' executables by name, built once for all the tests of the binary.
pub(crate) fn executables() -> &'static HashMap<String, PathBuf> {
    static BUILT: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    match BUILT.get_or_init(build_examples) {
        Ok(executables) => executables,
        Err(e) => panic!("{e}"),
    }
}

/// Builds the examples; cargo says where each executable is (whatever the target dir).
fn build_examples() -> Result<HashMap<String, PathBuf>, String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--examples",
            "-p",
            "examples",
            "--message-format=json",
        ])
        .output()
        .map_err(|e| format!("can't run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let messages: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !output.status.success() {
        let diagnostics: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["message"]["rendered"].as_str())
            .collect();
        return Err(format!(
            "cargo build --examples failed ({}):\n{}\n{}",
            output.status,
            diagnostics.concat(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(messages
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.contains(&json!("example")))
        })
        .filter_map(|m| {
            let name = m["target"]["name"].as_str()?;
            let executable = m["executable"].as_str()?;
            Some((name.to_owned(), PathBuf::from(executable)))
        })
        .collect())
}
