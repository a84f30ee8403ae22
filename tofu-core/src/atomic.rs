//! Atomic file writes: a reader sees the whole file or none of it, and a crash leaves no half
//! file under the final name.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes every temp file name of this process new (with the process id and the time).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
    let (tmp, file) = create_temp(dir, stem)?;
    let result = write_synced(file, write).and_then(|()| link_unique(&tmp, dir, stem, extension));
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
    let (tmp, file) = create_temp(dir, &name)?;
    // `rename` replaces the name itself: a symbolic link at `path` is replaced, not followed.
    let result = write_synced(file, write).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir);
    Ok(())
}

/// A new temp file in `dir`, created exclusively (never an existing file, never through a
/// symbolic link planted at its name), with a name no other writer uses: the process id, a
/// counter of this process and the time.
fn create_temp(dir: &Path, stem: &str) -> io::Result<(PathBuf, File)> {
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(
            ".{stem}.{}.{}.{nanos}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free temp file name in {}", dir.display()),
    ))
}

fn write_synced(
    file: File,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
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
            // Where there are no hard links; `symlink_metadata`: a dangling link is a name taken.
            Err(_) if fs::symlink_metadata(&target).is_err() => {
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

/// The folder records go to when theirs can't be written: `tofu-records-<uid>` in the system
/// temp folder, private to the user (0700 on Unix). It is created here if needed; an existing
/// one is used only if it is a real folder (not a symbolic link), owned by this user, and
/// reachable by no one else, else [`fallback_dir`] picks a new private folder next to it.
pub fn fallback_dir() -> PathBuf {
    fallback_dir_in(&std::env::temp_dir())
}

/// [`fallback_dir`] under `base`.
pub fn fallback_dir_in(base: &Path) -> PathBuf {
    let user = user_id();
    let name = format!("tofu-records-{}", user.as_deref().unwrap_or("user"));
    let preferred = base.join(&name);
    if private_dir(&preferred, user.as_deref()).is_ok() {
        return preferred;
    }
    // Taken by someone else (or not private): a new one, never an existing name.
    for n in 1..1000u32 {
        let other = base.join(format!("{name}-{n}"));
        if private_dir(&other, user.as_deref()).is_ok() {
            return other;
        }
    }
    preferred
}

/// Creates `dir` private to the user (0700), or checks that the existing one is a folder
/// (not a symbolic link), owned by `user` and closed to others.
fn private_dir(dir: &Path, user: Option<&str>) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a folder (or a symbolic link)"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if user.is_some_and(|u| u != meta.uid().to_string()) {
            return Err(io::Error::other("owned by another user"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(io::Error::other("open to other users"));
        }
    }
    let _ = user;
    Ok(())
}

/// The user's id (Unix uid), as this process's own files show it.
fn user_id() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        fs::metadata("/proc/self").ok().map(|m| m.uid().to_string())
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").ok().map(|u| safe_file_name(&u))
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

    /// Two writers of the same name at once (a station's slots without serial numbers) each
    /// get their own temp file: no record lost, none holding another's bytes.
    #[test]
    fn writers_of_one_name_at_once_never_share_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let dir = dir.path();
                scope.spawn(move || {
                    for i in 0..40u8 {
                        let data = vec![t.wrapping_mul(40).wrapping_add(i); 5000];
                        write_new_file(dir, "UNKNOWN_DUT", "json", |w| w.write_all(&data)).unwrap();
                    }
                });
            }
        });
        let mut files = 0;
        for entry in fs::read_dir(dir.path()).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            assert_eq!(bytes.len(), 5000);
            assert!(bytes.iter().all(|b| *b == bytes[0]), "a file mixes writers");
            files += 1;
        }
        assert_eq!(
            files,
            8 * 40,
            "every write is a file of its own, no temp file left"
        );
    }

    /// A symbolic link planted at the temp name a writer used to pick (`.<stem>.<pid>.tmp`)
    /// has its target overwritten no more.
    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_a_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let pid = std::process::id();
        for name in [format!(".run.{pid}.tmp"), format!(".state.json.{pid}.tmp")] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_new_file(dir.path(), "run", "json", |w| w.write_all(b"record")).unwrap();
        replace_file(&dir.path().join("state.json"), |w| w.write_all(b"state")).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            fs::read_to_string(dir.path().join("run.json")).unwrap(),
            "record"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_fallback_folder_is_private_and_never_a_planted_one() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        let dir = fallback_dir_in(base.path());
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{dir:?}");
        assert_eq!(
            fallback_dir_in(base.path()),
            dir,
            "the same folder next time"
        );
        // Someone made the name first: open to others, or a link to their folder.
        let base = tempfile::tempdir().unwrap();
        let name = format!("tofu-records-{}", user_id().unwrap());
        let theirs = base.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::symlink(&theirs, base.path().join(&name)).unwrap();
        let dir = fallback_dir_in(base.path());
        assert_ne!(dir, base.path().join(&name));
        assert!(!fs::symlink_metadata(&dir).unwrap().file_type().is_symlink());
        let base = tempfile::tempdir().unwrap();
        fs::create_dir(base.path().join(&name)).unwrap();
        fs::set_permissions(base.path().join(&name), fs::Permissions::from_mode(0o777)).unwrap();
        let dir = fallback_dir_in(base.path());
        assert_ne!(dir, base.path().join(&name));
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
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
