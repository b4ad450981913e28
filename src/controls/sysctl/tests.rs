//! sysctl: unit tests (the profile's promises, systemd-sysctl's order, plans and runs against a
//! fixture root and a fake `/proc/sys`, revert).

use super::conf::{self, ConfFile};
use super::*;
use crate::controls::testkit::{self, text};
use crate::policy::{Policy, SysctlKey, SysctlValue};
use crate::report::{Mode, Status};

const BASELAYOUT: &str = "net.ipv4.ip_forward = 1\nnet.ipv4.conf.default.rp_filter = 0\n\
    net.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.*.rp_filter = 0\n-net.ipv4.conf.all.rp_filter\n\
    kernel.kptr_restrict = 1\nfs.protected_regular = 0\nfs.protected_fifos = 0\n";

fn policy(edit: impl FnOnce(&mut policy::Sysctl)) -> Policy {
    let mut policy = Policy::default();
    policy.sysctl.profile = SysctlProfile::ContainerHost;
    edit(&mut policy.sysctl);
    policy
}

fn key(k: &str) -> SysctlKey {
    SysctlKey(k.into())
}

/// A Flatcar-shaped root (its 60-baselayout.conf, docker's unit) and a kernel whose `/proc/sys`
/// holds every profile key at the kernel's usual default, except those named in `absent`.
fn machine(absent: &[&str]) -> testkit::Machine {
    let m = testkit::Machine::new("BOOT_IMAGE=/flatcar/vmlinuz-a\n");
    m.root_file("/usr/lib/sysctl.d/60-baselayout.conf", BASELAYOUT);
    m.root_file("/usr/lib/systemd/system/docker.service", "[Service]\n");
    for s in profile::CONTAINER_HOST {
        if !absent.contains(&s.key) {
            let default = if s.key.contains("redirects") || s.key.contains("protected") {
                "1"
            } else {
                "0"
            };
            m.kernel_file(&proc_path(s.key), &format!("{default}\n"));
        }
    }
    m.kernel_file("/proc/sys/net/ipv4/ip_forward", "1\n");
    m.kernel_file("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n");
    m
}

fn run(host: &Host, policy: &Policy, mode: Mode) -> crate::report::ControlReport {
    testkit::run(
        host,
        policy,
        Box::new(Sysctl::new(policy.sysctl.clone())),
        mode,
    )
}

#[test]
fn the_profile_never_touches_what_containers_need_and_names_each_key_once() {
    for s in profile::CONTAINER_HOST {
        assert!(!profile::never(s.key), "{} is on the never list", s.key);
        assert!(SysctlKey::try_from(s.key.to_owned()).is_ok(), "{}", s.key);
        assert!(!s.why.is_empty());
    }
    for k in [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.all.forwarding",
        "net.ipv6.conf.default.forwarding",
        "net.ipv4.conf.all.rp_filter",
        "net.bridge.bridge-nf-call-iptables",
        "user.max_user_namespaces",
        "kernel.unprivileged_userns_clone",
    ] {
        assert!(profile::never(k), "{k}");
    }
    let mut keys: Vec<&str> = profile::CONTAINER_HOST.iter().map(|s| s.key).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert!(!keys.contains(&"kernel.kexec_load_disabled"), "opt-in only");
    // docs/policy.md documents every key of the profile.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.md")).unwrap();
    for s in profile::CONTAINER_HOST {
        assert!(
            docs.contains(&format!("| `{}` | `{}` |", s.key, s.value)),
            "docs/policy.md: {}",
            s.key
        );
    }
}

#[test]
fn systemd_sysctl_order_masks_by_name_and_the_later_name_wins() {
    let files = conf::order(vec![
        (
            "/usr/lib/sysctl.d/50-a.conf".into(),
            Some("kernel.x = 1\n".into()),
        ),
        (
            "/etc/sysctl.d/50-a.conf".into(),
            Some("kernel.x = 2\n".into()),
        ),
        (
            "/usr/lib/sysctl.d/60-b.conf".into(),
            Some("kernel/x = 3\n".into()),
        ),
        ("/run/sysctl.d/zz-z.conf".into(), None),
        (
            "/etc/sysctl.d/10-c.conf".into(),
            Some("-kernel.x = 4\n".into()),
        ),
    ]);
    let names: Vec<&str> = files.iter().map(ConfFile::name).collect();
    assert_eq!(names, ["10-c.conf", "50-a.conf", "60-b.conf"]);
    assert_eq!(
        files[1].path, "/etc/sysctl.d/50-a.conf",
        "/etc masks /usr/lib"
    );
    let line = conf::winner(&files, "kernel/x").unwrap();
    assert_eq!(
        (line.path, line.number, line.value.as_deref()),
        ("/usr/lib/sysctl.d/60-b.conf", 1, Some("3"))
    );
    assert_eq!(
        conf::normalize("net.ipv4.conf.eth0/100.rp_filter"),
        "net/ipv4/conf/eth0.100/rp_filter"
    );
    assert!(conf::matches(
        "net/ipv4/conf/*/rp_filter",
        "net/ipv4/conf/all/rp_filter"
    ));
    assert!(!conf::matches(
        "net/ipv4/*/rp_filter",
        "net/ipv4/conf/all/rp_filter"
    ));
    assert!(conf::matches(
        "net/ipv[46]/conf/?ll/x",
        "net/ipv6/conf/all/x"
    ));
}

#[test]
fn live_apply_writes_the_file_and_proc_sys_and_leaves_forwarding_alone() {
    // A kernel without dev.tty.ldisc_autoload (before 5.1).
    let m = machine(&["dev.tty.ldisc_autoload"]);
    let host = m.with_kernel();
    let policy = policy(|s| {
        s.settings.insert(
            key("net.ipv4.tcp_rmem"),
            SysctlValue("4096 131072 6291456".into()),
        );
    });
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    let file = m.read_root(FILE);
    assert!(file.contains("\nkernel.kptr_restrict = 2\n"), "{file}");
    assert!(
        !file.contains("ip_forward") && !file.contains("rp_filter"),
        "{file}"
    );
    assert_eq!(m.read_kernel("/proc/sys/kernel/kptr_restrict"), "2");
    assert_eq!(
        m.read_kernel("/proc/sys/fs/protected_fifos"),
        "1\n",
        "already 1"
    );
    assert_eq!(m.read_kernel("/proc/sys/fs/protected_regular"), "2");
    assert_eq!(
        m.read_kernel("/proc/sys/net/ipv4/conf/all/accept_redirects"),
        "0"
    );
    assert_eq!(
        m.read_kernel("/proc/sys/net/ipv4/ip_forward"),
        "1\n",
        "untouched"
    );
    assert_eq!(
        m.read_kernel("/proc/sys/net/ipv4/tcp_rmem"),
        "4096\t131072\t6291456\n",
        "the same value with other blanks is not rewritten"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("not applicable") && n.contains("dev.tty.ldisc_autoload")),
        "{}",
        text(&report)
    );
    assert!(report.changes.iter().any(|c| c.kind == "write-sysctl"));
    let again = run(&host, &policy, Mode::Apply);
    assert_eq!(again.status, Status::Compliant, "{}", text(&again));
    assert!(again.changes.is_empty());
}

#[test]
fn a_later_file_that_sets_a_key_is_drift_named_by_file_and_line() {
    let m = machine(&[]);
    let host = m.with_kernel();
    let policy = policy(|_| {});
    run(&host, &policy, Mode::Apply);
    m.root_file(
        "/etc/sysctl.d/zz-x.conf",
        "# mine\nkernel.kptr_restrict = 1\nnet.ipv4.conf.*.send_redirects = 1\n",
    );
    let report = run(&host, &policy, Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    let all = text(&report);
    assert!(
        all.contains("/etc/sysctl.d/zz-x.conf:2 sets kernel.kptr_restrict = 1"),
        "{all}"
    );
    assert!(
        all.contains("/etc/sysctl.d/zz-x.conf:3 sets `net.ipv4.conf.*.send_redirects = 1`"),
        "{all}"
    );
    // An exclusion line later drops the agent's key.
    m.root_file("/etc/sysctl.d/zz-x.conf", "-kernel.dmesg_restrict\n");
    let report = run(&host, &policy, Mode::Check);
    assert!(
        text(&report).contains("zz-x.conf:1 (`-kernel.dmesg_restrict`)"),
        "{}",
        text(&report)
    );
    // Flatcar's own file sorts before the agent's: no drift from it.
    m.root_file("/etc/sysctl.d/zz-x.conf", "# nothing\n");
    let report = run(&host, &policy, Mode::Check);
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
}

#[test]
fn forwarding_off_is_refused_on_a_container_host_unless_allowed() {
    let m = machine(&[]);
    let host = m.with_kernel();
    let mut policy = policy(|s| {
        s.settings
            .insert(key("net.ipv4.ip_forward"), SysctlValue("0".into()));
    });
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("net.ipv4.ip_forward = 0"),
        "{}",
        text(&report)
    );
    assert!(text(&report).contains("/usr/lib/systemd/system/docker.service"));
    assert!(text(&report).contains("sysctl.allow_forwarding_off = true"));
    assert!(!m.root.join(&FILE[1..]).exists(), "nothing written");
    assert_eq!(m.read_kernel("/proc/sys/net/ipv4/ip_forward"), "1\n");
    policy.sysctl.allow_forwarding_off = true;
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert_eq!(m.read_kernel("/proc/sys/net/ipv4/ip_forward"), "0");
}

#[test]
fn offline_writes_the_file_only_and_waits_for_the_boot() {
    let m = machine(&[]);
    let host = m.offline();
    let policy = policy(|s| s.exclude.push(key("fs.protected_regular")));
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    let file = m.read_root(FILE);
    assert!(!file.contains("protected_regular"), "excluded: {file}");
    assert!(file.contains("fs.protected_fifos = 1"), "{file}");
    let again = run(&host, &policy, Mode::Apply);
    assert!(again.changes.is_empty(), "{}", text(&again));
}

#[test]
fn revert_puts_back_the_values_and_the_file() {
    use crate::journal;
    let m = machine(&[]);
    let host = m.with_kernel();
    let policy = policy(|_| {});
    *host.journal.borrow_mut() = Some(journal::Recorder::new("apply".into(), 20));
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    *host.journal.borrow_mut() = None;
    assert_eq!(m.read_kernel("/proc/sys/kernel/dmesg_restrict"), "1");
    let meta = journal::read::runs(&host).unwrap().pop().unwrap();
    let run = journal::read::load(&host, &meta.id).unwrap();
    let steps = journal::revert::steps(&run, &[], false);
    let mut reports = Vec::new();
    crate::engine::run(&host, &Policy::default(), &steps, Mode::Apply, &mut |r| {
        reports.push(r)
    });
    assert_eq!(reports[0].status, Status::Changed, "{}", text(&reports[0]));
    assert_eq!(m.read_kernel("/proc/sys/kernel/dmesg_restrict"), "0");
    assert_eq!(m.read_kernel("/proc/sys/kernel/kptr_restrict"), "0");
    assert!(!m.root.join(&FILE[1..]).exists(), "the file is gone again");
}

#[test]
fn sysctl_conf_counts_through_debians_link_and_a_dev_null_link_masks() {
    let m = machine(&[]);
    let host = m.with_kernel();
    let policy = policy(|_| {});
    run(&host, &policy, Mode::Apply);
    // Debian's procps links 99-sysctl.conf to /etc/sysctl.conf: read, and sorted before the
    // agent's file, so its value loses at boot.
    m.root_file("/etc/sysctl.conf", "kernel.kptr_restrict = 1\n");
    std::os::unix::fs::symlink("../sysctl.conf", m.root.join("etc/sysctl.d/99-sysctl.conf"))
        .unwrap();
    let report = run(&host, &policy, Mode::Check);
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
    // The same line in a file that sorts later wins, unless /etc masks that file.
    m.root_file("/usr/lib/sysctl.d/zz-z.conf", "kernel.kptr_restrict = 1\n");
    let report = run(&host, &policy, Mode::Check);
    assert!(
        text(&report).contains("/usr/lib/sysctl.d/zz-z.conf:1 sets kernel.kptr_restrict = 1"),
        "{}",
        text(&report)
    );
    std::os::unix::fs::symlink("/dev/null", m.root.join("etc/sysctl.d/zz-z.conf")).unwrap();
    let report = run(&host, &policy, Mode::Check);
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
}

#[test]
fn kexec_load_disabled_is_opt_in_and_said_to_be_one_way() {
    let m = machine(&[]);
    m.kernel_file("/proc/sys/kernel/kexec_load_disabled", "0\n");
    let host = m.with_kernel();
    let report = run(&host, &policy(|_| {}), Mode::Check);
    assert!(!text(&report).contains("kexec"), "not in the profile");
    let policy = policy(|s| {
        s.settings
            .insert(key("kernel.kexec_load_disabled"), SysctlValue("1".into()));
    });
    let report = run(&host, &policy, Mode::Apply);
    assert_eq!(m.read_kernel("/proc/sys/kernel/kexec_load_disabled"), "1");
    assert!(
        text(&report)
            .contains("kernel.kexec_load_disabled = 1 cannot be undone until the next boot"),
        "{}",
        text(&report)
    );
    assert!(m
        .read_root(FILE)
        .contains("# set by the policy's sysctl.settings\nkernel.kexec_load_disabled = 1\n"));
}
