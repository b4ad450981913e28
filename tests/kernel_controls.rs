//! smt, selinux and etcd-locksmith-tls through the real binary, on a copy of the Flatcar-shaped
//! fixture tree (`--root`): what an operator checks afterwards — files, exit codes, statuses.
//!
//! A `--root` other than `/` is an image: there is no running kernel to switch, so these tests see
//! the persistent half (grub.cfg, /etc/selinux/config) and `pending-reboot` for the rest. The
//! runtime half (sysfs, /proc/cmdline) is covered by the unit tests in `src/controls/` against a
//! fake kernel tree, and on the VM test bed against a real one.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::Value;

mod common;
use common::tree::{control, status, Tree};

const NOSMT_LINE: &str = "set linux_append=\"$linux_append nosmt\"";
const AUTO_LINE: &str = "set linux_append=\"$linux_append mitigations=auto,nosmt\"";
const FIXTURE_GRUB: &str = "# Set kernel arguments for this platform here.\nset oem_id=\"qemu\"\n";

#[test]
fn smt_off_adds_nosmt_once_and_waits_for_boot() {
    let tree = Tree::new("[smt]\nstate = \"off\"\n");
    let before = tree.snapshot();
    let (code, report) = tree.json(&["check", "--only", "smt"]);
    assert_eq!(code, 3, "drift before apply: {report}");
    assert_eq!(status(&report, "smt"), "would-change");

    let dry = tree.run(&["apply", "--dry-run", "--only", "smt"]);
    assert_eq!(dry.status.code(), Some(0));
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains(&format!("+{NOSMT_LINE}")), "{text}");
    assert_eq!(tree.snapshot(), before, "check and dry-run write nothing");

    let (code, report) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(status(&report, "smt"), "pending-reboot");
    assert!(
        report.to_string().contains("takes effect at boot"),
        "{report}"
    );
    assert_eq!(
        tree.read("/oem/grub.cfg"),
        format!("{FIXTURE_GRUB}{NOSMT_LINE}\n")
    );

    let after_first = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 0);
    assert_eq!(status(&report, "smt"), "pending-reboot");
    assert_eq!(control(&report, "smt")["changes"], Value::Array(vec![]));
    assert_eq!(
        tree.snapshot(),
        after_first,
        "the second apply touched the tree"
    );
    assert_eq!(
        tree.read("/oem/grub.cfg").matches("nosmt").count(),
        1,
        "no duplicate line after two applies"
    );
    let check = tree.run(&["check", "--only", "smt"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "pending-reboot counts as success"
    );
}

#[test]
fn smt_keeps_a_line_ignition_already_wrote_and_auto_replaces_the_agents_own() {
    let tree = Tree::new("[smt]\nstate = \"off\"\n");
    // What Butane's kernel_arguments leave behind: the same line, among others.
    let ignition =
        format!("set oem_id=\"qemu\"\n{NOSMT_LINE}\nset linux_console=\"console=ttyS0\"\n");
    tree.write("/oem/grub.cfg", &ignition);
    let before = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 0);
    assert_eq!(status(&report, "smt"), "pending-reboot");
    assert_eq!(tree.snapshot(), before, "already there: nothing written");

    tree.policy("[smt]\nstate = \"auto\"\n");
    let (code, report) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        tree.read("/oem/grub.cfg"),
        format!("set oem_id=\"qemu\"\nset linux_console=\"console=ttyS0\"\n{AUTO_LINE}\n")
    );
    assert_eq!(tree.run(&["check", "--only", "smt"]).status.code(), Some(0));
}

#[test]
fn smt_writes_the_grub_cfg_the_policy_names_and_fails_without_an_oem_partition() {
    let tree = Tree::new("[smt]\nstate = \"off\"\ngrub_cfg = \"/usr/share/oem/grub.cfg\"\n");
    let before = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(status(&report, "smt"), "failed");
    assert!(
        report.to_string().contains("/usr/share/oem does not exist"),
        "{report}"
    );
    assert_eq!(tree.snapshot(), before);

    fs::create_dir_all(tree.path("/usr/share/oem")).unwrap();
    let (code, _) = tree.json(&["apply", "--only", "smt"]);
    assert_eq!(code, 0);
    assert_eq!(
        tree.read("/usr/share/oem/grub.cfg"),
        format!("{NOSMT_LINE}\n")
    );
    assert_eq!(
        tree.read("/oem/grub.cfg"),
        FIXTURE_GRUB,
        "the other grub.cfg is untouched"
    );
}

#[test]
fn selinux_enforcing_replaces_the_link_with_an_edited_copy() {
    let tree = Tree::new("[selinux]\nstate = \"enforcing\"\n");
    let target = tree.read("/usr/lib/selinux/config");
    assert!(fs::symlink_metadata(tree.path("/etc/selinux/config"))
        .unwrap()
        .file_type()
        .is_symlink());
    let before = tree.snapshot();
    let dry = tree.run(&["apply", "--dry-run", "--only", "selinux"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("-SELINUX=permissive") && text.contains("+SELINUX=enforcing"),
        "{text}"
    );
    assert!(
        text.contains("replace symlink with a regular file"),
        "{text}"
    );
    assert_eq!(
        tree.run(&["check", "--only", "selinux"]).status.code(),
        Some(3)
    );
    assert_eq!(tree.snapshot(), before);

    let (code, report) = tree.json(&["apply", "--only", "selinux"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(status(&report, "selinux"), "pending-reboot");
    let meta = fs::symlink_metadata(tree.path("/etc/selinux/config")).unwrap();
    assert!(meta.file_type().is_file(), "a regular file now");
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!(
        tree.read("/etc/selinux/config"),
        target.replace("SELINUX=permissive", "SELINUX=enforcing")
    );
    assert_eq!(
        tree.read("/usr/lib/selinux/config"),
        target,
        "not written through the link"
    );

    let settled = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "selinux"]);
    assert_eq!(
        (code, status(&report, "selinux").as_str()),
        (0, "pending-reboot")
    );
    assert_eq!(tree.snapshot(), settled);
    assert_eq!(
        tree.run(&["check", "--only", "selinux"]).status.code(),
        Some(0)
    );
}

#[test]
fn selinux_regular_config_is_edited_in_place() {
    let tree = Tree::new("[selinux]\nstate = \"permissive\"\n");
    fs::remove_file(tree.path("/etc/selinux/config")).unwrap();
    let config = "# local copy\nSELINUX=enforcing\nSELINUXTYPE=mcs\n";
    tree.write("/etc/selinux/config", config);
    fs::set_permissions(
        tree.path("/etc/selinux/config"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, report) = tree.json(&["apply", "--only", "selinux"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        tree.read("/etc/selinux/config"),
        config.replace("SELINUX=enforcing", "SELINUX=permissive")
    );
    let mode = fs::metadata(tree.path("/etc/selinux/config"))
        .unwrap()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600, "mode kept");
}

#[test]
fn etcd_locksmith_audit_reports_plain_http_and_never_writes() {
    // The default policy audits; nothing of etcd or locksmith in the fixture.
    let tree = Tree::new("");
    let (code, report) = tree.json(&["check", "--only", "etcd-locksmith-tls"]);
    assert_eq!(
        (code, status(&report, "etcd-locksmith-tls").as_str()),
        (0, "not-applicable")
    );

    tree.write(
        "/usr/lib/systemd/system/locksmithd.service",
        "[Service]\nEnvironmentFile=-/usr/share/flatcar/update.conf\n\
         EnvironmentFile=-/etc/flatcar/update.conf\nExecStart=/usr/lib/locksmith/locksmithd\n",
    );
    tree.write(
        "/etc/flatcar/update.conf",
        "REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=http://10.0.0.1:2379\n",
    );
    let before = tree.snapshot();
    for mode in ["check", "apply"] {
        let (code, report) = tree.json(&[mode, "--only", "etcd-locksmith-tls"]);
        assert_eq!(code, 1, "{mode}: findings fail the control: {report}");
        let audit = control(&report, "etcd-locksmith-tls");
        assert_eq!(audit["status"], "failed");
        assert_eq!(audit["changes"], Value::Array(vec![]));
        let notes = audit["notes"].to_string();
        assert!(
            notes.contains("/etc/flatcar/update.conf:2: LOCKSMITHD_ENDPOINT http://10.0.0.1:2379 is not https://"),
            "{notes}"
        );
        assert!(
            notes.contains("LOCKSMITHD_ETCD_CAFILE is not set"),
            "{notes}"
        );
    }
    assert_eq!(tree.snapshot(), before, "an audit never writes");

    // TLS throughout, and a password file only root can read: clean.
    for name in ["ca", "cert", "key"] {
        tree.write(&format!("/etc/ssl/locksmith/{name}.pem"), "PEM\n");
    }
    tree.write(
        "/etc/flatcar/update.conf",
        "REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=https://10.0.0.1:2379\n\
         LOCKSMITHD_ETCD_CAFILE=/etc/ssl/locksmith/ca.pem\n\
         LOCKSMITHD_ETCD_CERTFILE=/etc/ssl/locksmith/cert.pem\n\
         LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/locksmith/key.pem\n\
         LOCKSMITHD_ETCD_PASSWORD=hunter2\n",
    );
    let (code, report) = tree.json(&["check", "--only", "etcd-locksmith-tls"]);
    assert_eq!(code, 1, "the password file is world-readable: {report}");
    assert!(
        report
            .to_string()
            .contains("world-readable file (mode 0644)"),
        "{report}"
    );
    fs::set_permissions(
        tree.path("/etc/flatcar/update.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, report) = tree.json(&["check", "--only", "etcd-locksmith-tls"]);
    assert_eq!(
        (code, status(&report, "etcd-locksmith-tls").as_str()),
        (0, "compliant"),
        "{report}"
    );
}

#[test]
fn the_full_guide_leaves_every_kernel_control_settled_after_one_apply() {
    let guide = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/full-guide.toml"),
    )
    .unwrap();
    let tree = Tree::new(&guide);
    let only = ["--only", "smt,selinux,etcd-locksmith-tls"];
    assert_eq!(
        tree.run(&[&["check"][..], &only].concat()).status.code(),
        Some(3)
    );
    let (code, report) = tree.json(&[&["apply"][..], &only].concat());
    assert_eq!(code, 0, "{report}");
    for (id, expected) in [
        ("smt", "pending-reboot"),
        ("selinux", "pending-reboot"),
        ("etcd-locksmith-tls", "not-applicable"),
    ] {
        assert_eq!(status(&report, id), expected, "{id}: {report}");
    }
    let settled = tree.snapshot();
    let (code, report) = tree.json(&[&["apply"][..], &only].concat());
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["changed"], 0);
    assert_eq!(tree.snapshot(), settled);
    assert_eq!(
        tree.run(&[&["check"][..], &only].concat()).status.code(),
        Some(0)
    );
}

/// Flatcar's `/usr/lib/sysctl.d/60-baselayout.conf`, as flatcar/baselayout ships it.
const BASELAYOUT_SYSCTL: &str = "net.ipv4.ip_forward = 1\nnet.ipv4.conf.default.rp_filter = 0\n\
    net.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.*.rp_filter = 0\n-net.ipv4.conf.all.rp_filter\n\
    kernel.kptr_restrict = 1\nfs.protected_regular = 0\nfs.protected_fifos = 0\n";
const SYSCTL_FILE: &str = "/etc/sysctl.d/zz-flatcar-harden.conf";

#[test]
fn sysctl_profile_on_an_image_writes_one_file_that_sorts_last_and_waits_for_boot() {
    let tree = Tree::new("[sysctl]\nprofile = \"container-host\"\n");
    tree.write("/usr/lib/sysctl.d/60-baselayout.conf", BASELAYOUT_SYSCTL);
    tree.write("/usr/lib/systemd/system/docker.service", "[Service]\n");
    let before = tree.snapshot();
    let (code, report) = tree.json(&["check", "--only", "sysctl"]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(status(&report, "sysctl"), "would-change");
    let dry = tree.run(&["apply", "--dry-run", "--only", "sysctl"]);
    assert_eq!(dry.status.code(), Some(0));
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains("+kernel.kptr_restrict = 2"), "{text}");
    assert_eq!(tree.snapshot(), before, "check and dry-run write nothing");

    let (code, report) = tree.json(&["apply", "--only", "sysctl"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(status(&report, "sysctl"), "pending-reboot", "{report}");
    assert!(
        report.to_string().contains("takes effect at boot"),
        "{report}"
    );
    let file = tree.read(SYSCTL_FILE);
    let settings: Vec<&str> = file
        .lines()
        .filter(|l| l.contains(" = ") && !l.starts_with('#'))
        .collect();
    assert_eq!(settings.len(), 25, "{file}");
    assert!(settings.contains(&"fs.protected_regular = 2"), "{file}");
    assert!(
        !settings
            .iter()
            .any(|l| l.contains("forward") || l.contains("rp_filter")),
        "{file}"
    );
    let mode = fs::metadata(tree.path(SYSCTL_FILE)).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o644);

    let after = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "sysctl"]);
    assert_eq!(code, 0);
    assert_eq!(control(&report, "sysctl")["changes"], Value::Array(vec![]));
    assert_eq!(tree.snapshot(), after, "the second apply touched the tree");

    // A later-sorting file wins at boot: drift, named by file and line.
    tree.write(
        "/etc/sysctl.d/zz-x.conf",
        "# local\nkernel.kptr_restrict = 1\n",
    );
    let (code, report) = tree.json(&["check", "--only", "sysctl"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(status(&report, "sysctl"), "failed");
    assert!(
        report
            .to_string()
            .contains("/etc/sysctl.d/zz-x.conf:2 sets kernel.kptr_restrict = 1"),
        "{report}"
    );
    fs::remove_file(tree.path("/etc/sysctl.d/zz-x.conf")).unwrap();

    // dev-sec's ip_forward = 0, on a host with docker's unit: refused, nothing written.
    tree.policy(
        "[sysctl]\nprofile = \"container-host\"\nsettings = { \"net.ipv4.ip_forward\" = \"0\" }\n",
    );
    let before = tree.snapshot();
    let (code, report) = tree.json(&["apply", "--only", "sysctl"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.to_string().contains("allow_forwarding_off"),
        "{report}"
    );
    assert_eq!(tree.snapshot(), before, "a refused policy writes nothing");
}
