//! A run killed in the middle of a write (SIGKILL injected by `strace` at the fsync of the
//! temporary file, or at the rename into place) leaves its temporary behind; the next run removes
//! it and succeeds. And a run that gets the PID of a killed earlier one (PID 1 of a fresh PID
//! namespace, as in an image build) no longer trips over that run's temporary.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

mod common;
use common::{copy_fixture, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    dir
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{tool} is needed for this test (tests/install-deps.sh installs it)"
    );
}

/// The agent's temporaries in `dir` (`.NAME.fh-…`).
fn temporaries(dir: &Path) -> Vec<OsString> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".fh-"))
        .collect()
}

/// `apply --only ID` with SIGKILL delivered on entry to the `nth` call of `syscalls`.
fn apply_killed_at(root: &Path, id: &str, syscalls: &str, nth: u32) {
    require("strace");
    let out = Command::new("timeout")
        .args(["--kill-after=10", "120", "strace", "-f", "-o", "/dev/null"])
        .args(["-e", &format!("trace={syscalls}")])
        .args([
            "-e",
            &format!("inject={syscalls}:signal=SIGKILL:when={nth}"),
        ])
        .args([BIN, "apply", "--policy", FULL_GUIDE, "--only", id, "--root"])
        .arg(root)
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    // `timeout` dies by the signal that killed what it ran (it exits 124 on a hang).
    assert_eq!(
        out.status.signal(),
        Some(nix::libc::SIGKILL),
        "the run was not killed at {syscalls}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `apply --only ID -v`, optionally behind a command prefix; returns exit code and all output.
fn apply(root: &Path, id: &str, prefix: &[&str]) -> (i32, String) {
    let mut command = Command::new("timeout");
    command
        .args(["--kill-after=10", "120"])
        .args(prefix)
        .args([
            BIN, "apply", "-v", "--policy", FULL_GUIDE, "--only", id, "--root",
        ])
        .arg(root)
        .env_remove("SSH_CONNECTION")
        .env_remove("RUST_LOG");
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_run_killed_before_fsync_leaves_a_temporary_the_next_run_removes() {
    let root = fixture();
    let r = root.path();
    let dir = r.join("etc/sudoers.d");
    let before = snapshot(r);
    // The journal writes first: run.json and the record of core-passwd's prior state, each
    // fsyncing its file and then its directory; the 5th fsync is the control's own file.
    apply_killed_at(r, "core-sudo", "fsync", 5);
    let left = temporaries(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].to_string_lossy().starts_with(".core-passwd.fh-"));
    // The temporary (and the time stamp of its directory) is all the killed run changed, beside
    // the journal that recorded the prior state.
    let mut after = snapshot(r);
    after.retain(|path, _| !path.starts_with("var"));
    assert!(after
        .remove(&Path::new("etc/sudoers.d").join(&left[0]))
        .is_some());
    let directory = Path::new("etc/sudoers.d");
    after.insert(directory.to_path_buf(), before[directory].clone());
    assert_eq!(after, before);

    let (code, text) = apply(r, "core-sudo", &[]);
    assert_eq!(code, 0, "{text}");
    let removed = format!(
        "removed /etc/sudoers.d/{}, left by an interrupted run",
        left[0].to_string_lossy()
    );
    assert!(text.contains(&removed), "{text}");
    assert_eq!(temporaries(&dir), Vec::<OsString>::new());
    let written = fs::read_to_string(dir.join("core-passwd")).unwrap();
    assert!(written.contains("core ALL=(ALL) ALL\n"), "{written}");
}

#[test]
fn a_run_killed_at_the_rename_of_a_link_leaves_a_temporary_the_next_run_removes() {
    let root = fixture();
    let r = root.path();
    let dir = r.join("etc/systemd/system");
    // The journal's run.json and record are renamed into place first; the 3rd is the link's.
    apply_killed_at(r, "sshd-socket", "rename,renameat,renameat2", 3);
    let left = temporaries(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!dir.join("sshd.socket").exists(), "renamed before the kill");

    let (code, text) = apply(r, "sshd-socket", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("left by an interrupted run"), "{text}");
    assert_eq!(temporaries(&dir), Vec::<OsString>::new());
    assert_eq!(
        fs::read_link(dir.join("sshd.socket")).unwrap(),
        Path::new("/dev/null")
    );
}

#[test]
fn a_run_with_the_pid_of_a_killed_run_neither_collides_nor_keeps_its_temporary() {
    require("unshare");
    let root = fixture();
    let r = root.path();
    let dir = r.join("etc/sudoers.d");
    // What an earlier version, killed as PID 1 of a PID namespace, left: the very name it would
    // pick again as PID 1 ("File exists" at every run, and core kept NOPASSWD).
    fs::write(
        dir.join(".core-passwd.fh-1-0"),
        "core ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    let mut namespace = if nix::unistd::geteuid().is_root() {
        vec!["unshare", "--pid", "--fork"]
    } else {
        vec!["unshare", "--user", "--map-root-user", "--pid", "--fork"]
    };
    // The shell says its PID, then becomes the agent with that PID.
    namespace.extend(["sh", "-c", "echo \"pid $$\"; exec \"$0\" \"$@\""]);
    let (code, text) = apply(r, "core-sudo", &namespace);
    assert!(text.starts_with("pid 1\n"), "{text}");
    assert_eq!(code, 0, "{text}");
    assert_eq!(temporaries(&dir), Vec::<OsString>::new());
    let written = fs::read_to_string(dir.join("core-passwd")).unwrap();
    assert!(written.contains("core ALL=(ALL) ALL\n"), "{written}");
}
