//! Shared by the integration tests: a fresh Flatcar-shaped tree and a fingerprint of a tree.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies the Flatcar-shaped fixture tree (`tests/fixtures/flatcar`) into `dest`, links and modes
/// included.
pub fn copy_fixture(dest: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flatcar");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(fixture.join("."))
        .arg(dest)
        .status()
        .unwrap();
    assert!(copied.success(), "cp -a of the fixture tree failed");
}

/// Every path under `root` with its type, mode, owner, mtime and content (or link target): two
/// equal snapshots mean nothing under `root` was written.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_file() {
                format!("{:?}", fs::read(&path).unwrap())
            } else {
                // A FIFO, socket or device: reading it could block; its type is in the mode.
                "special".to_owned()
            };
            let stamp = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                format!(
                    "{:o} {}:{} {stamp} {what}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }
    out
}
