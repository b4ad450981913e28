//! The real binary against a Flatcar-shaped tree in a temporary directory (`--root`): what an
//! operator would check after each command — files, bytes, modes, exit codes, messages.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{fresh_root, run_on, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(output)))
}

fn status_of(report: &Value, id: &str) -> String {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {report}"))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mode(path: PathBuf) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

#[test]
fn apply_brings_the_tree_in_line_and_a_second_apply_changes_nothing() {
    let root = fresh_root();
    let r = root.path();
    let first = run_on(r, &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(code(&first), 0, "{}{}", stdout(&first), stderr(&first));

    let dropin = r.join("etc/sudoers.d/core-passwd");
    assert!(fs::read_to_string(&dropin)
        .unwrap()
        .contains("\ncore ALL=(ALL) ALL\n"));
    assert_eq!(mode(dropin.clone()), 0o440);
    let passwd = fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd,
        "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n"
    );
    let blacklist = fs::read_to_string(r.join("etc/modprobe.d/blacklist.conf")).unwrap();
    for line in [
        "install usb-storage /bin/false",
        "blacklist usb-storage",
        "install uas /bin/false",
        "blacklist uas",
    ] {
        assert!(
            blacklist.lines().any(|l| l == line),
            "{line} missing from:\n{blacklist}"
        );
    }
    assert_eq!(mode(r.join("etc/modprobe.d/blacklist.conf")), 0o644);
    // No temporary file is left behind.
    let leftovers: Vec<_> = snapshot(r)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".fh-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let before = snapshot(r);
    let second = run_on(r, &["apply", "--policy", FULL_GUIDE, "--format", "json"]);
    assert_eq!(code(&second), 0);
    let report = json(&second);
    for id in ["core-sudo", "core-login", "usb-storage"] {
        assert_eq!(status_of(&report, id), "compliant");
    }
    assert_eq!(report["summary"]["changed"], 0);
    assert_eq!(snapshot(r), before, "the second apply touched the tree");
}

#[test]
fn dry_run_and_check_write_nothing_and_show_the_diff() {
    let root = fresh_root();
    let r = root.path();
    let before = snapshot(r);

    let dry = run_on(r, &["apply", "--dry-run", "--policy", FULL_GUIDE]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(
        text.contains("-core:x:500:500:Flatcar Admin:/home/core:/bin/bash"),
        "{text}"
    );
    assert!(
        text.contains("+core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin"),
        "{text}"
    );
    assert!(text.contains("+++ /etc/sudoers.d/core-passwd"), "{text}");
    assert!(text.contains("+blacklist uas"), "{text}");
    assert!(text.contains("would-change"), "{text}");

    let check = run_on(r, &["check", "--policy", FULL_GUIDE]);
    assert_eq!(code(&check), 3, "check reports drift with exit 3");
    assert_eq!(snapshot(r), before, "dry-run or check changed the tree");

    assert_eq!(code(&run_on(r, &["apply", "--policy", FULL_GUIDE])), 0);
    assert_eq!(
        code(&run_on(r, &["check", "--policy", FULL_GUIDE])),
        0,
        "compliant after apply"
    );
}

#[test]
fn json_report_follows_the_schema() {
    let root = fresh_root();
    let out = run_on(
        root.path(),
        &[
            "apply",
            "--dry-run",
            "--format",
            "json",
            "--policy",
            FULL_GUIDE,
        ],
    );
    let report = json(&out);
    assert_eq!(report["version"], 1);
    assert_eq!(report["mode"], "dry-run");
    assert_eq!(
        report["root"],
        root.path().canonicalize().unwrap().display().to_string()
    );
    let controls = report["controls"].as_array().unwrap();
    let ids: Vec<&str> = controls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "sshd-socket",
            "sshd-config",
            "sshd-listen",
            "docker-socket",
            "core-sudo",
            "core-login",
            "usb-storage",
            "smt",
            "sysctl",
            "kernel-lockdown",
            "console-autologin",
            "selinux",
            "auditd",
            "etcd-locksmith-tls"
        ]
    );
    let allowed = [
        "compliant",
        "changed",
        "would-change",
        "pending-reboot",
        "not-applicable",
        "skipped",
        "failed",
    ];
    let mut counted = 0;
    for control in controls {
        let status = control["status"].as_str().unwrap();
        assert!(allowed.contains(&status), "{status}");
        assert!(control["summary"].is_string());
        for change in control["changes"].as_array().unwrap() {
            assert!(change["kind"].is_string());
            assert!(change["path"].is_string() || change["target"].is_string());
        }
        counted += 1;
    }
    let total: u64 = allowed
        .iter()
        .map(|s| report["summary"][s].as_u64().unwrap())
        .sum();
    assert_eq!(total, counted);
    // In an image, what only happens at boot is said so, never claimed as done.
    assert_eq!(status_of(&report, "sshd-socket"), "would-change");
    let diff = controls.iter().find(|c| c["id"] == "core-login").unwrap()["changes"][0]["diff"]
        .as_str()
        .unwrap();
    assert!(
        diff.starts_with("--- /etc/passwd\n+++ /etc/passwd\n"),
        "{diff}"
    );
}

#[test]
fn default_policy_restricts_usb_storage_but_leaves_core_alone() {
    let root = fresh_root();
    let report = json(&run_on(root.path(), &["check", "--format", "json"]));
    assert_eq!(status_of(&report, "usb-storage"), "would-change");
    assert_eq!(status_of(&report, "core-sudo"), "skipped");
    assert_eq!(status_of(&report, "core-login"), "skipped");
}

#[test]
fn bad_policies_exit_2_with_file_line_and_change_nothing() {
    let corpus: [(&str, &[u8], &str); 7] = [
        (
            "unknown-key",
            b"[smt]\nmod = \"off\"\n",
            "line 2, column 1: unknown key `smt.mod`",
        ),
        (
            "unknown-table",
            b"[usb]\nstate = \"denied\"\n",
            "unknown key `usb`, did you mean `usb-storage`?",
        ),
        (
            "wrong-type",
            b"[safety]\nallow_remote_lockout = \"yes\"\n",
            "line 2",
        ),
        (
            "bad-enum",
            b"[selinux]\nstate = \"enforce\"\n",
            "`enforce` is not a value of `selinux.state`, did you mean `enforcing`?",
        ),
        (
            "bad-mode",
            b"[core-sudo]\nstate = \"require-password\"\nfile_mode = \"0666\"\n",
            "sudo ignores such sudoers files",
        ),
        (
            "duplicate-table",
            b"[smt]\nstate = \"off\"\n[smt]\nstate = \"auto\"\n",
            "line 3",
        ),
        ("not-utf8", b"[smt]\nstate = \"o\xffff\"\n", "not UTF-8"),
    ];
    for (name, content, expected) in corpus {
        let root = fresh_root();
        let r = root.path();
        // Through --policy …
        let file = r.join(format!("{name}.toml"));
        fs::write(&file, content).unwrap();
        let before = snapshot(r);
        let out = run_on(r, &["apply", "--policy", file.to_str().unwrap()]);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(
            message.contains(&format!("{name}.toml")),
            "{name}: file not named: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: expected `{expected}` in: {message}"
        );
        assert_eq!(snapshot(r), before, "{name}: the tree changed");
        // … and as a drop-in under the root, among valid files.
        write(
            r,
            "/etc/flatcar-harden/policy.toml",
            "[core-login]\nstate = \"nologin\"\n",
        );
        fs::write(
            r.join(format!("etc/flatcar-harden/policy.d/50-{name}.toml")),
            content,
        )
        .unwrap();
        let before = snapshot(r);
        let out = run_on(r, &["apply"]);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("/etc/flatcar-harden/policy.d/50-{name}.toml")));
        assert_eq!(snapshot(r), before, "{name}: the tree changed");
        // policy check says the same.
        let check = Command::new(BIN)
            .args(["policy", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(code(&check), 2);
        assert!(
            stderr(&check).contains(expected),
            "{name}: {}",
            stderr(&check)
        );
    }
}

#[test]
fn policy_sources_merge_key_by_key_in_order() {
    let root = fresh_root();
    let r = root.path();
    write(r, "/usr/share/flatcar-harden/policy.toml", "[core-sudo]\nstate = \"require-password\"\nfile_mode = \"0400\"\n[smt]\nstate = \"auto\"\n");
    write(
        r,
        "/etc/flatcar-harden/policy.toml",
        "[smt]\nstate = \"off\"\n",
    );
    write(
        r,
        "/etc/flatcar-harden/policy.d/10-a.toml",
        "[usb-storage]\nmodules = [\"usb-storage\"]\n",
    );
    write(
        r,
        "/etc/flatcar-harden/policy.d/20-b.toml",
        "[usb-storage]\nmethod = \"blacklist\"\n",
    );
    write(
        r,
        "/etc/flatcar-harden/policy.d/ignored.conf",
        "not toml at all [",
    );
    let out = run_on(r, &["policy", "show"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: toml::Table = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["core-sudo"]["state"].as_str(),
        Some("require-password")
    );
    assert_eq!(shown["core-sudo"]["file_mode"].as_str(), Some("0400"));
    assert_eq!(
        shown["smt"]["state"].as_str(),
        Some("off"),
        "/etc wins over /usr/share"
    );
    assert_eq!(shown["usb-storage"]["modules"].as_array().unwrap().len(), 1);
    assert_eq!(shown["usb-storage"]["method"].as_str(), Some("blacklist"));
    assert_eq!(
        shown["usb-storage"]["state"].as_str(),
        Some("denied"),
        "built-in default kept"
    );
    assert!(stdout(&out).contains("/etc/flatcar-harden/policy.d/20-b.toml"));

    // --policy replaces the file sources.
    let out = run_on(r, &["policy", "show", "--policy", FULL_GUIDE]);
    let shown: toml::Table = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["core-sudo"]["file_mode"].as_str(), Some("0440"));
}

#[test]
fn only_selects_controls_and_rejects_unknown_ids() {
    let root = fresh_root();
    let r = root.path();
    let report = json(&run_on(
        r,
        &[
            "check",
            "--format",
            "json",
            "--only",
            "usb-storage,core-sudo",
            "--policy",
            FULL_GUIDE,
        ],
    ));
    let ids: Vec<&str> = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["core-sudo", "usb-storage"]);
    let before = snapshot(r);
    let out = run_on(r, &["apply", "--only", "usb-stororage"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("did you mean `usb-storage`?"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn guide_butane_files_are_kept_and_only_completed() {
    let root = fresh_root();
    let r = root.path();
    // What the guide's Butane snippets write.
    write(r, "/etc/sudoers.d/core-passwd", "core\tALL=(ALL) \tALL\n");
    fs::set_permissions(
        r.join("etc/sudoers.d/core-passwd"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write(
        r,
        "/etc/modprobe.d/blacklist.conf",
        "blacklist usb-storage\n",
    );
    let out = run_on(
        r,
        &[
            "apply",
            "--policy",
            FULL_GUIDE,
            "--only",
            "core-sudo,usb-storage",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("mode 0644 -> 0440"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/sudoers.d/core-passwd")).unwrap(),
        "core\tALL=(ALL) \tALL\n"
    );
    assert_eq!(mode(r.join("etc/sudoers.d/core-passwd")), 0o440);
    let blacklist = fs::read_to_string(r.join("etc/modprobe.d/blacklist.conf")).unwrap();
    assert!(
        blacklist.starts_with("blacklist usb-storage\ninstall usb-storage /bin/false\n"),
        "{blacklist}"
    );
    assert_eq!(
        blacklist.matches("blacklist usb-storage").count(),
        1,
        "no duplicate line"
    );

    // With the guide's own method, the guide's file is already compliant for usb-storage.
    let root = fresh_root();
    let r = root.path();
    write(
        r,
        "/etc/modprobe.d/blacklist.conf",
        "blacklist usb-storage\n",
    );
    let policy = r.join("p.toml");
    fs::write(
        &policy,
        "[usb-storage]\nmodules = [\"usb-storage\"]\nmethod = \"blacklist\"\n",
    )
    .unwrap();
    let report = json(&run_on(
        r,
        &[
            "check",
            "--format",
            "json",
            "--policy",
            policy.to_str().unwrap(),
        ],
    ));
    assert_eq!(status_of(&report, "usb-storage"), "compliant");
}

#[test]
fn later_sudoers_rule_giving_core_nopasswd_again_is_reported() {
    let root = fresh_root();
    let r = root.path();
    write(
        r,
        "/etc/sudoers.d/zz-admins",
        "core ALL=(ALL) NOPASSWD: ALL\n",
    );
    let out = run_on(
        r,
        &[
            "apply",
            "--policy",
            FULL_GUIDE,
            "--only",
            "core-sudo",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(status_of(&report, "core-sudo"), "failed");
    let notes = report["controls"][0]["notes"].to_string();
    assert!(notes.contains("/etc/sudoers.d/zz-admins:1"), "{notes}");
    assert!(notes.contains("gives core NOPASSWD again"), "{notes}");
    // A file sudo ignores (it has a dot in its name) does not count.
    fs::rename(
        r.join("etc/sudoers.d/zz-admins"),
        r.join("etc/sudoers.d/zz.disabled"),
    )
    .unwrap();
    let out = run_on(r, &["check", "--policy", FULL_GUIDE, "--only", "core-sudo"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn core_only_in_baselayout_is_copied_into_etc_passwd() {
    let root = fresh_root();
    let r = root.path();
    // No trailing newline, an unusual but valid file: every byte but the new line is kept.
    write(r, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash");
    let out = run_on(
        r,
        &["apply", "--policy", FULL_GUIDE, "--only", "core-login"],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        fs::read_to_string(r.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n"
    );
}

#[test]
fn conflicting_install_rule_elsewhere_is_reported() {
    let root = fresh_root();
    let r = root.path();
    write(
        r,
        "/usr/lib/modprobe.d/10-usb.conf",
        "install usb-storage /sbin/modprobe --ignore-install usb-storage\n",
    );
    let out = run_on(r, &["check", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(status_of(&report, "usb-storage"), "failed");
    assert!(report
        .to_string()
        .contains("/usr/lib/modprobe.d/10-usb.conf:1"));
    // The same name in /etc hides the /usr/lib file, as kmod does.
    write(r, "/etc/modprobe.d/10-usb.conf", "# disabled\n");
    let out = run_on(r, &["apply"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(code(&run_on(r, &["check"])), 0);
}

#[test]
fn symlinks_never_lead_out_of_the_root() {
    let outside = tempfile::tempdir().unwrap();
    let root = fresh_root();
    let r = root.path();
    // A link that climbs out of the root, and an absolute one: both must resolve inside it.
    fs::remove_dir_all(r.join("etc/modprobe.d")).unwrap();
    let climb = format!("../../../../../../../..{}", outside.path().display());
    std::os::unix::fs::symlink(&climb, r.join("etc/modprobe.d")).unwrap();
    let out = run_on(r, &["apply"]);
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "wrote outside the root: {}",
        stdout(&out)
    );
    assert_ne!(code(&out), 0, "the write cannot succeed, and must say so");
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));

    fs::remove_file(r.join("etc/modprobe.d")).unwrap();
    std::os::unix::fs::symlink(outside.path(), r.join("etc/modprobe.d")).unwrap();
    let _ = run_on(r, &["apply"]);
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "followed an absolute link out"
    );
}

#[test]
fn generated_sudoers_pass_visudo() {
    let Some(visudo) = ["/usr/sbin/visudo", "/usr/bin/visudo"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("visudo not installed: skipping the visudo check (CI installs sudo)");
        return;
    };
    let root = fresh_root();
    let r = root.path();
    assert_eq!(
        code(&run_on(
            r,
            &["apply", "--policy", FULL_GUIDE, "--only", "core-sudo"]
        )),
        0
    );
    let out = Command::new(visudo)
        .args(["-c", "-f"])
        .arg(r.join("etc/sudoers.d/core-passwd"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN)
        .args(["apply", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let out = Command::new(BIN)
        .args(["check", "--root", "/nonexistent-root"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("/nonexistent-root"));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).starts_with("flatcar-harden "));
}

#[test]
fn documented_default_is_the_built_in_default() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/policy.md")).unwrap();
    let section = doc.split("## The built-in default").nth(1).unwrap();
    let block = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let documented: toml::Table = toml::from_str(block).unwrap();
    let out = Command::new(BIN)
        .args(["policy", "show", "--policy", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let built_in: toml::Table = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        documented, built_in,
        "docs/policy.md shows another default than the binary has"
    );
}

#[test]
fn image_mode_masks_sshd_and_restricts_docker_as_systemctl_would() {
    let root = fresh_root();
    let r = root.path();
    let out = run_on(
        r,
        &[
            "apply",
            "--policy",
            FULL_GUIDE,
            "--only",
            "sshd-socket,docker-socket",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let report = json(&out);
    // Nothing runs in an image: the report says it takes effect at boot.
    assert_eq!(status_of(&report, "sshd-socket"), "pending-reboot");
    assert_eq!(status_of(&report, "docker-socket"), "pending-reboot");
    assert!(report.to_string().contains("takes effect at boot"));
    assert_eq!(
        fs::read_link(r.join("etc/systemd/system/sshd.socket")).unwrap(),
        Path::new("/dev/null")
    );
    assert_eq!(
        fs::read(r.join("etc/systemd/system/docker.socket.d/10-restrict.conf")).unwrap(),
        b"[Socket]\nSocketGroup=root\n"
    );
    assert_eq!(
        mode(r.join("etc/systemd/system/docker.socket.d/10-restrict.conf")),
        0o644
    );

    let before = snapshot(r);
    let again = json(&run_on(
        r,
        &[
            "apply",
            "--policy",
            FULL_GUIDE,
            "--only",
            "sshd-socket,docker-socket",
            "--format",
            "json",
        ],
    ));
    assert_eq!(again["summary"]["changed"], 0);
    for control in again["controls"].as_array().unwrap() {
        assert_eq!(control["changes"].as_array().unwrap().len(), 0, "{control}");
    }
    assert_eq!(snapshot(r), before);
    assert_eq!(
        code(&run_on(
            r,
            &[
                "check",
                "--policy",
                FULL_GUIDE,
                "--only",
                "sshd-socket,docker-socket"
            ]
        )),
        0
    );

    // "enabled" undoes the mask.
    let unmask = r.join("unmask.toml");
    fs::write(&unmask, "[sshd-socket]\nstate = \"enabled\"\n").unwrap();
    write(
        r,
        "/usr/lib/systemd/system/sshd.socket",
        "[Socket]\nListenStream=22\nAccept=yes\n",
    );
    let out = run_on(
        r,
        &[
            "apply",
            "--policy",
            unmask.to_str().unwrap(),
            "--only",
            "sshd-socket",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(fs::symlink_metadata(r.join("etc/systemd/system/sshd.socket")).is_err());
}

#[test]
fn image_mode_refuses_to_mask_over_a_real_unit_file() {
    let root = fresh_root();
    let r = root.path();
    write(
        r,
        "/etc/systemd/system/sshd.socket",
        "[Socket]\nListenStream=2222\n",
    );
    let before = snapshot(r);
    let out = run_on(
        r,
        &["apply", "--policy", FULL_GUIDE, "--only", "sshd-socket"],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("is a unit file, not a link"),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot(r), before);
}

/// Every example policy in docs/examples is valid, and applying it to the Flatcar-shaped tree
/// twice leaves nothing to change the second time.
#[test]
fn every_example_policy_is_valid_and_its_apply_settles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let mut examples: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "{examples:?}");
    for example in &examples {
        let shown = example.display().to_string();
        let checked = Command::new(BIN)
            .args(["policy", "check"])
            .arg(example)
            .output()
            .unwrap();
        assert_eq!(code(&checked), 0, "{shown}: {}", stderr(&checked));
        let root = fresh_root();
        let apply = ["apply", "--policy", &shown, "--format", "json"];
        let first = run_on(root.path(), &apply);
        assert_eq!(
            code(&first),
            0,
            "{shown}: {}{}",
            stdout(&first),
            stderr(&first)
        );
        let second = json(&run_on(root.path(), &apply));
        let changed: Vec<&str> = second["controls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "changed")
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert!(
            changed.is_empty(),
            "{shown}: the second apply changed {changed:?}"
        );
    }
}
