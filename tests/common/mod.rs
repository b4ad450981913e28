//! Shared by the integration tests: a fresh Flatcar-shaped tree, the agent run on it, and a
//! fingerprint of a tree.
// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

pub mod tree;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    // git keeps no directory modes: /etc/sudoers.d is 0750 on Flatcar, and sudo wants it so.
    fs::set_permissions(
        dest.join("etc/sudoers.d"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
}

/// A fresh copy of the fixture tree in a temporary directory.
pub fn fresh_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    dir
}

/// The agent run on `root` with `args`, without the environment that would change what it does
/// (an SSH connection for the lockout guard, a log filter).
pub fn run_on(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatcar-harden"))
        .args(args)
        .arg("--root")
        .arg(root)
        .env_remove("SSH_CONNECTION")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
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
