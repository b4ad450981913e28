//! core-sudo's drop-in against the real visudo: a drop-in visudo rejects is replaced even when it
//! holds the right rule, and a machine without visudo gets a failed control (no file written)
//! unless `apply --no-validate` is given, which writes and says so.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::{common, core_sudo_args, ready, BIN};

const DROPIN: &str = "etc/sudoers.d/core-passwd";

/// A fresh Flatcar-shaped tree (baselayout sudoers with core NOPASSWD, `#includedir`).
fn flatcar() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_fixture(dir.path());
    fs::set_permissions(
        dir.path().join("etc/sudoers.d"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    dir
}

/// `flatcar-harden ARGS --root ROOT --only core-sudo --format json`, through `wrapper` if given.
fn agent(wrapper: &[&str], args: &[&str], root: &Path) -> (Output, Value) {
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(BIN);
            command
        }
        None => Command::new(BIN),
    };
    let output = command
        .args(core_sudo_args(args, root))
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn control(report: &Value) -> &Value {
    &report["controls"][0]
}

/// Skips (loudly) or fails (under CI) when the machine cannot run these.
fn can_run() -> bool {
    match ready() {
        Ok(()) => true,
        Err(missing) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("visudo tests: cannot run in CI: {missing}")
        }
        Err(missing) => {
            // Past the harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** visudo tests SKIPPED: {missing} ***\n"
            );
            false
        }
    }
}

#[test]
fn a_dropin_with_the_right_rule_that_visudo_rejects_is_replaced() {
    if !can_run() {
        return;
    }
    let root = flatcar();
    let dropin = root.path().join(DROPIN);
    // Form feeds between the words: whitespace to a naive reader (which kept this file for
    // ever), a syntax error to sudo.
    fs::write(&dropin, "core\x0cALL=(ALL)\x0cALL\n").unwrap();
    fs::set_permissions(&dropin, fs::Permissions::from_mode(0o440)).unwrap();
    let rejected = Command::new("/usr/sbin/visudo")
        .args(["-c", "-f"])
        .arg(&dropin)
        .output()
        .unwrap();
    assert!(
        !rejected.status.success(),
        "visudo accepts form feeds after all"
    );

    let (applied, report) = agent(&[], &["apply"], root.path());
    assert_eq!(control(&report)["status"], "changed", "{report}");
    assert_eq!(applied.status.code(), Some(0));
    let written = fs::read_to_string(&dropin).unwrap();
    assert!(written.ends_with("\ncore ALL=(ALL) ALL\n"), "{written:?}");
    let accepted = Command::new("/usr/sbin/visudo")
        .args(["-c", "-f"])
        .arg(&dropin)
        .output()
        .unwrap();
    assert!(accepted.status.success());
    let (_, report) = agent(&[], &["check"], root.path());
    assert_eq!(control(&report)["status"], "compliant", "{report}");
}

#[test]
fn without_visudo_the_write_fails_unless_no_validate() {
    if !can_run() {
        return;
    }
    // A build machine without sudo: /usr/sbin (and /sbin, a link to it) hidden by an empty tmpfs.
    let hide = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /usr/sbin && exec \"$@\"",
        "sh",
    ];
    let root = flatcar();
    let dropin = root.path().join(DROPIN);

    let (refused, report) = agent(&hide, &["apply"], root.path());
    let shown = control(&report).to_string();
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert_eq!(control(&report)["status"], "failed", "{shown}");
    assert!(shown.contains("visudo is not installed"), "{shown}");
    assert!(shown.contains("--no-validate"), "{shown}");
    assert!(!dropin.exists(), "written without validation");

    let (_, report) = agent(&hide, &["check"], root.path());
    assert_eq!(control(&report)["status"], "failed", "{report}");

    let (written, report) = agent(&hide, &["apply", "--no-validate"], root.path());
    let shown = control(&report).to_string();
    assert_eq!(written.status.code(), Some(0), "{shown}");
    assert_eq!(control(&report)["status"], "changed", "{shown}");
    assert!(shown.contains("written without validation"), "{shown}");
    assert!(dropin.exists());
}
