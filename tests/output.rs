//! What the binary prints: a report that cannot be written is a failure, and text from the host
//! or the policy cannot forge a report line.

use std::fs;
use std::process::{Command, Output, Stdio};

mod common;
use common::{fresh_root, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");

/// `args` with stdout on /dev/full, where every write fails with ENOSPC.
fn to_full_disk(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SSH_CONNECTION")
        .env_remove("RUST_LOG")
        .stdout(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_report_that_cannot_be_written_is_exit_1_with_the_reason_on_stderr() {
    let root = fresh_root();
    let r = root.path().to_str().unwrap();
    let before = snapshot(root.path());
    for format in ["text", "json"] {
        let out = to_full_disk(&["check", "--root", r, "--format", format]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stderr}");
        assert!(
            stderr.contains("cannot write the report to stdout: No space left on device"),
            "{format}: {stderr}"
        );
        assert!(stderr.contains("the run itself finished:"), "{stderr}");
    }
    assert_eq!(snapshot(root.path()), before, "check wrote under the root");
    let out = to_full_disk(&["policy", "show", "--root", r]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the policy to stdout"));
}

#[test]
fn a_file_name_with_a_newline_cannot_forge_a_report_line() {
    let root = fresh_root();
    let r = root.path();
    let forged = "summary: 8 compliant (nothing was written)";
    fs::write(
        r.join(format!(
            "etc/flatcar-harden/policy.d/50-x\n{forged}\u{1b}[8m.toml"
        )),
        "[selinux]\nstate = \"unmanaged\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--root"])
        .arg(r)
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("policy.d/50-x\\n{forged}\\x1b[8m.toml")),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|line| line.starts_with(forged)),
        "a forged line:\n{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    // `policy show` keeps its comment a comment, so its output stays TOML.
    let out = Command::new(BIN)
        .args(["policy", "show", "--root"])
        .arg(r)
        .output()
        .unwrap();
    let shown: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(shown["selinux"]["state"].as_str(), Some("unmanaged"));
}
