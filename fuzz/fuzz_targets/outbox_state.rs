//! The outbox's `state.json`: any bytes, read as an entry's state (in /dev/shm when there is one).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tofu_upload::uploader::Outbox;

fn entry_dir() -> &'static (tempfile::TempDir, PathBuf) {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let root = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary folder");
        let entry = root.path().join("1795620310889-SN-1-1-0");
        std::fs::create_dir_all(entry.join("files")).expect("the entry's folder");
        (root, entry)
    })
}

fuzz_target!(|data: &[u8]| {
    let (root, entry) = entry_dir();
    let state = entry.join("state.json");
    std::fs::write(&state, data).expect("state.json written");
    let entries = Outbox::open(root.path())
        .expect("the outbox")
        .entries()
        .expect("a listing");
    assert_eq!(entries.len(), 1);
    if let Err(e) = &entries[0] {
        assert!(e.to_string().contains(&state.display().to_string()), "{e}");
    }
});
