//! Small file systems for the disk tests: a tmpfs mounted on a fresh folder for one test, full
//! or read-only, unmounted when dropped. Shared by this package's tests and tofu-upload's
//! (which include this file with `#[path]`).
//!
//! Mounting needs root (or CAP_SYS_ADMIN). Without it a test using this says so loudly on the
//! console and does nothing, unless `TOFU_REQUIRE_MOUNT=1` is set (as in CI): then it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns "can't mount, skipped" into a failure.
pub(crate) const REQUIRE_MOUNT_ENV: &str = "TOFU_REQUIRE_MOUNT";

/// A mounted tmpfs; unmounted (and its folder removed) when dropped.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

/// How a tmpfs is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Writable; [`Tmpfs::fill`] fills it.
    Writable,
    /// Mounted read-only: nothing can be created in it.
    ReadOnly,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB. `None` (after a loud message) when mounting is not
    /// permitted, unless [`REQUIRE_MOUNT_ENV`] is `1`: then it panics.
    pub(crate) fn mount(test: &str, size_kib: u32, mode: Mode) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut options = format!("size={size_kib}k,mode=0755");
        if mode == Mode::ReadOnly {
            options.push_str(",ro");
        }
        let result = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tofu-test"])
            .arg(dir.path())
            .output();
        let error = match result {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => format!(
                "mount exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("can't run mount: {e}"),
        };
        let message = format!(
            "{test}: SKIPPED, this test needs to mount a tmpfs (root or CAP_SYS_ADMIN): {error}"
        );
        if std::env::var(REQUIRE_MOUNT_ENV).is_ok_and(|v| v == "1") {
            panic!("{message} ({REQUIRE_MOUNT_ENV}=1: a skip is a failure)");
        }
        // Straight to the process's stderr: the test harness captures `eprintln!`, not this.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! {message}\n!!!!! set {REQUIRE_MOUNT_ENV}=1 to make this a failure\n"
        );
        None
    }

    /// The mount point.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A folder created in it (before it is filled).
    pub(crate) fn folder(&self, name: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(&path).expect("a folder in the tmpfs");
        path
    }

    /// Fills it to the last byte with one file, `filler`.
    pub(crate) fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).expect("the filler file");
        let chunk = [0xA5u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Whatever a partial write left: one byte at a time up to the end.
        while file.write(&chunk[..1]).is_ok_and(|n| n == 1) {}
        assert!(
            std::fs::write(self.path().join("probe"), b"x").is_err(),
            "the tmpfs is full"
        );
        let _ = std::fs::remove_file(self.path().join("probe"));
    }

    /// Frees the space [`fill`](Self::fill) took.
    pub(crate) fn free(&self) {
        std::fs::remove_file(self.filler()).expect("the filler file removed");
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Every file under the mount point but the filler, as paths relative to it.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if let Ok(relative) = path.strip_prefix(root) {
                    out.push(relative.to_path_buf());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.retain(|p| p != Path::new("filler"));
        out.sort();
        out
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a file still open): detach it now, the kernel frees it when closed.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}
