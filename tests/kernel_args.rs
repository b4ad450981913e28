//! kernel-lockdown and console-autologin through the real binary on a copy of the Flatcar-shaped
//! fixture tree (`--root`, an image: no running kernel, so the grub.cfg and drop-in halves only):
//! check, dry-run diffs, apply, a second apply that changes nothing, and revert.

use std::fs;

use serde_json::Value;

mod common;
use common::run_on;
use common::tree::{control, status, Tree};

const FIXTURE_GRUB: &str = "# Set kernel arguments for this platform here.\nset oem_id=\"qemu\"\n";
const LOCKDOWN_LINE: &str = "set linux_append=\"$linux_append lockdown=confidentiality\"";
/// Flatcar's build_library/oem/vmware/grub.cfg, byte for byte.
const VMWARE_GRUB: &str =
    "# Flatcar GRUB settings\n\nset oem_id=\"vmware\"\nset linux_append=\"flatcar.autologin\"\n";
const DROPIN: &str = "/etc/systemd/system/getty@tty1.service.d/autologin.conf";
const DROPIN_CONF: &str =
    "[Service]\nExecStart=\nExecStart=-/sbin/agetty -o '-p -f -- \\\\u' -a core --noclear %I $TERM\n";

/// Check (drift, nothing written), dry-run (the diff shows `diff_line`, nothing written), apply
/// (`applied` status), and a second apply that changes nothing.
fn apply_once(tree: &Tree, id: &str, diff_line: &str, applied: &str) {
    let before = tree.snapshot();
    let (code, report) = tree.json(&["check", "--only", id]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(status(&report, id), "would-change");
    let dry = tree.run(&["apply", "--dry-run", "--only", id]);
    assert_eq!(dry.status.code(), Some(0));
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains(diff_line), "{text}");
    assert_eq!(tree.snapshot(), before, "check and dry-run write nothing");

    let (code, report) = tree.json(&["apply", "--only", id]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(status(&report, id), applied, "{report}");
    let after = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", id]);
    assert_eq!(code, 0);
    assert_eq!(control(&report, id)["changes"], Value::Array(vec![]));
    assert_eq!(tree.snapshot(), after, "the second apply touched the tree");
}

/// `revert --last` puts the tree back as it was (the journal aside).
fn revert_restores(tree: &Tree, id: &str) {
    let out = run_on(&tree.root(), &["revert", "--last", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status(&report, id), "changed", "{report}");
}

#[test]
fn kernel_lockdown_offline_writes_one_line_and_reverts() {
    let tree = Tree::new("[kernel-lockdown]\nstate = \"confidentiality\"\n");
    // An earlier lockdown= the policy replaces.
    tree.write(
        "/oem/grub.cfg",
        &format!("{FIXTURE_GRUB}set linux_append=\"$linux_append lockdown=integrity\"\n"),
    );
    let original = tree.read("/oem/grub.cfg");
    apply_once(
        &tree,
        "kernel-lockdown",
        &format!("+{LOCKDOWN_LINE}"),
        "pending-reboot",
    );
    assert_eq!(
        tree.read("/oem/grub.cfg"),
        format!("{FIXTURE_GRUB}{LOCKDOWN_LINE}\n"),
        "the other level gone, the wanted one once"
    );
    let (_, report) = tree.json(&["check", "--only", "kernel-lockdown"]);
    let notes = control(&report, "kernel-lockdown")["notes"].to_string();
    assert!(
        notes.contains("takes effect at boot") && notes.contains("kprobes"),
        "{notes}"
    );
    revert_restores(&tree, "kernel-lockdown");
    assert_eq!(tree.read("/oem/grub.cfg"), original);
}

#[test]
fn console_autologin_offline_takes_out_the_argument_and_the_dropin_and_reverts() {
    let tree = Tree::new("[console-autologin]\nstate = \"off\"\n");
    tree.write("/oem/grub.cfg", VMWARE_GRUB);
    tree.write(DROPIN, DROPIN_CONF);
    apply_once(
        &tree,
        "console-autologin",
        "-set linux_append=\"flatcar.autologin\"",
        "changed",
    );
    assert_eq!(
        tree.read("/oem/grub.cfg"),
        VMWARE_GRUB.replace("\"flatcar.autologin\"", "\"\"")
    );
    assert!(!tree.path(DROPIN).exists());
    assert!(
        tree.path("/etc/systemd/system/getty@tty1.service.d")
            .is_dir(),
        "the directory stays"
    );
    revert_restores(&tree, "console-autologin");
    assert_eq!(tree.read("/oem/grub.cfg"), VMWARE_GRUB);
    assert_eq!(fs::read_to_string(tree.path(DROPIN)).unwrap(), DROPIN_CONF);
}
