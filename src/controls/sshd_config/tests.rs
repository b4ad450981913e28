//! sshd-config: unit tests (the reader, the crypto edits, the guard, and offline runs on a
//! fixture root shaped like Flatcar's /etc/ssh). `sshd -t`/`sshd -T` are proven in the VM
//! scenarios `sshd-config` and `sshd-config-guard`.

use super::crypto::{modern, CryptoFacts, PQ_KEX};
use super::reader::glob;
use super::*;
use crate::controls::testkit::{self, text};
use crate::host::sshd::parse_effective;
use crate::policy::{AccountName, Policy};
use crate::report::{Mode, Status};

const FLATCAR_MAIN: &str = "# Flatcar\nInclude \"/etc/ssh/sshd_config.d/*.conf\"\n";

fn flatcar() -> testkit::Machine {
    let m = testkit::Machine::new("BOOT_IMAGE=/vmlinuz\n");
    m.root_file("/etc/ssh/sshd_config", FLATCAR_MAIN);
    m.root_file(
        "/etc/ssh/sshd_config.d/50-flatcar-sshd.conf",
        "Subsystem sftp internal-sftp\nClientAliveInterval 180\nUsePAM yes\n\
         HostkeyAlgorithms +ssh-rsa\nPubkeyAcceptedAlgorithms +ssh-rsa\n",
    );
    m.root_file(
        "/etc/ssh/sshd_config.d/9999999gentoo-pam.conf",
        "PasswordAuthentication no\n",
    );
    m.root_file("/usr/sbin/sshd", "");
    m
}

fn strict() -> Policy {
    let mut policy = Policy::default();
    let section = &mut policy.sshd_config;
    section.state = policy::SshdConfigState::Enforced;
    section.permit_root_login = Some(PermitRootLogin::No);
    section.password_authentication = Some(false);
    section.client_alive_interval = Some(policy::SshdSeconds(60));
    section.allow_users = Some(vec![AccountName("core".into())]);
    policy
}

fn run(host: &Host, policy: &Policy, mode: Mode) -> crate::report::ControlReport {
    let step = Box::new(SshdConfig::new(policy.sshd_config.clone()));
    testkit::run(host, policy, step, mode)
}

#[test]
fn the_dropin_is_written_first_in_order_0600_and_a_second_apply_changes_nothing() {
    let m = flatcar();
    let host = m.offline();
    let policy = strict();
    let dry = run(&host, &policy, Mode::DryRun);
    assert_eq!(dry.status, Status::WouldChange, "{}", text(&dry));
    assert!(dry.changes[0]
        .diff
        .as_deref()
        .unwrap()
        .contains("+PermitRootLogin no"));
    assert!(!m.root.join(&DROPIN[1..]).exists(), "dry run wrote");

    let first = run(&host, &policy, Mode::Apply);
    assert_eq!(first.status, Status::PendingReboot, "{}", text(&first));
    let written = m.read_root(DROPIN);
    assert!(written.contains(
        "PermitRootLogin no\nPasswordAuthentication no\nClientAliveInterval 60\nAllowUsers core\n"
    ));
    let mode = std::fs::metadata(m.root.join(&DROPIN[1..])).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    let again = run(&host, &policy, Mode::Apply);
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.status, Status::PendingReboot, "{}", text(&again));
    assert_eq!(m.read_root(DROPIN), written);
}

#[test]
fn a_file_that_sorts_earlier_or_the_main_file_before_its_include_is_drift_named_file_line() {
    let m = flatcar();
    m.root_file(
        "/etc/ssh/sshd_config.d/00-aaa.conf",
        "# x\nPermitRootLogin yes\n",
    );
    let host = m.offline();
    let report = run(&host, &strict(), Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("/etc/ssh/sshd_config.d/00-aaa.conf:2: `PermitRootLogin yes`"),
        "{}",
        text(&report)
    );
    // The later Flatcar ClientAliveInterval loses to the drop-in: not drift.
    assert!(
        !text(&report).contains("50-flatcar-sshd.conf"),
        "{}",
        text(&report)
    );

    let m = flatcar();
    m.root_file(
        "/etc/ssh/sshd_config",
        "PasswordAuthentication yes\nInclude \"/etc/ssh/sshd_config.d/*.conf\"\n",
    );
    let report = run(&m.offline(), &strict(), Mode::Check);
    assert!(
        text(&report).contains("/etc/ssh/sshd_config:1: `PasswordAuthentication yes`"),
        "{}",
        text(&report)
    );
}

#[test]
fn allow_users_anywhere_else_adds_to_the_list_and_is_drift() {
    let m = flatcar();
    m.root_file("/etc/ssh/sshd_config.d/60-more.conf", "AllowUsers alice\n");
    let report = run(&m.offline(), &strict(), Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("60-more.conf:1: `AllowUsers alice` adds"),
        "{}",
        text(&report)
    );
}

#[test]
fn without_an_include_the_dropin_is_not_read_and_that_is_said() {
    let m = flatcar();
    m.root_file("/etc/ssh/sshd_config", "UsePAM yes\n");
    let report = run(&m.offline(), &strict(), Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("has no `Include`"),
        "{}",
        text(&report)
    );
}

#[test]
fn no_sshd_in_the_image_is_not_applicable() {
    let m = flatcar();
    std::fs::remove_file(m.root.join("usr/sbin/sshd")).unwrap();
    let report = run(&m.offline(), &strict(), Mode::Check);
    assert_eq!(report.status, Status::NotApplicable, "{}", text(&report));
}

#[test]
fn include_globs_sort_bytewise_and_skip_hidden_files() {
    assert!(glob("*.conf", "00-flatcar-harden.conf"));
    assert!(!glob("*.conf", ".00-flatcar-harden.conf.fh-0123"));
    assert!(!glob("*.conf", "x.conf.bak"));
    assert!(glob("[0-4]?-*.conf", "40-x.conf"));
    assert!(!glob("[!0-4]*.conf", "40-x.conf"));
    let mut names = [
        "9999999gentoo.conf",
        "00-flatcar-harden.conf",
        "00-aaa.conf",
        "50-flatcar-sshd.conf",
    ];
    names.sort();
    assert_eq!(names[0], "00-aaa.conf");
    assert_eq!(names[1], "00-flatcar-harden.conf");
}

fn facts(default_kex: &str, known: &[&str], fips: bool) -> CryptoFacts {
    CryptoFacts {
        defaults: parse_effective(&format!(
            "kexalgorithms {default_kex}\nmacs umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha1\n"
        )),
        known_kex: known.iter().map(|k| (*k).to_owned()).collect(),
        fips,
    }
}

#[test]
fn modern_crypto_edits_defaults_and_puts_only_known_post_quantum_names_first() {
    // OpenSSH 9.x: post-quantum already first by default, so the weak ones are removed.
    let openssh_9 = facts(
        "sntrup761x25519-sha512@openssh.com,curve25519-sha256,diffie-hellman-group14-sha256",
        &["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"],
        false,
    );
    let (edits, note) = modern(Some(&openssh_9));
    assert_eq!(note, None);
    assert!(edits[0]
        .line()
        .starts_with("KexAlgorithms -diffie-hellman-group1-sha1,"));
    let kex = crypto_setting(&edits[0], Some(&openssh_9));
    assert_eq!(
        kex.expected.unwrap(),
        ["sntrup761x25519-sha512@openssh.com,curve25519-sha256"]
    );
    let macs = crypto_setting(&edits[2], Some(&openssh_9));
    assert_eq!(macs.expected.unwrap(), ["hmac-sha2-256-etm@openssh.com"]);

    // OpenSSH 8.9: knows sntrup761 but does not prefer it: `^` with that name only (mlkem768
    // would make sshd refuse the configuration).
    let openssh_8 = facts(
        "curve25519-sha256,diffie-hellman-group14-sha256",
        &["curve25519-sha256", "sntrup761x25519-sha512@openssh.com"],
        false,
    );
    let (edits, note) = modern(Some(&openssh_8));
    assert_eq!(
        edits[0].line(),
        "KexAlgorithms ^sntrup761x25519-sha512@openssh.com"
    );
    assert!(note.unwrap().contains("weak key exchanges stay"));
    let kex = crypto_setting(&edits[0], Some(&openssh_8));
    assert_eq!(
        kex.expected.unwrap(),
        ["sntrup761x25519-sha512@openssh.com,curve25519-sha256,diffie-hellman-group14-sha256"]
    );

    // FIPS: nothing outside the validated module is put first.
    let (edits, note) = modern(Some(&facts("ecdh-sha2-nistp256", &PQ_KEX, true)));
    assert_eq!(edits[0].op, '-');
    assert!(note.unwrap().contains("FIPS"));
    // Nothing removed is FIPS-approved: AES-GCM/CTR, SHA-2 HMACs, NIST ECDH stay.
    for edit in &edits {
        for name in &edit.names {
            assert!(
                ![
                    "aes128-ctr",
                    "aes256-gcm@openssh.com",
                    "hmac-sha2-256",
                    "hmac-sha2-512-etm@openssh.com",
                    "ecdh-sha2-nistp256"
                ]
                .contains(&name.as_str()),
                "{name} removed"
            );
        }
    }
}

#[test]
fn every_line_of_the_dropin_is_one_directive() {
    let mut policy = strict();
    policy.sshd_config.crypto = SshdCrypto::Modern;
    policy.sshd_config.allow_groups = Some(vec![
        AccountName("wheel".into()),
        AccountName("core".into()),
    ]);
    let (settings, _) = settings(&policy.sshd_config, None);
    let text = content(&settings);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), settings.len());
    assert!(lines.contains(&"AllowGroups wheel core"));
    for line in lines {
        assert_eq!(
            line.matches(' ').count(),
            line.split_whitespace().count() - 1,
            "{line}"
        );
    }
}

fn guard(policy: &Policy, user: &str, auth: Result<Vec<String>, String>) -> Option<String> {
    let session = Session::authenticated(user, user, auth);
    SshdConfig::new(policy.sshd_config.clone()).lockout_risk(&session)
}

#[test]
fn the_guard_names_each_loss_and_fails_closed_on_an_unknown_auth_method() {
    let key = || Ok(vec!["publickey".to_owned()]);
    let password = || Ok(vec!["password".to_owned()]);
    let policy = strict();
    // root over SSH: root login off, and root not in AllowUsers.
    let risk = guard(&policy, "root", key()).unwrap();
    assert!(risk.contains("PermitRootLogin no: root (you)"), "{risk}");
    assert!(risk.contains("AllowUsers core leaves out root"), "{risk}");
    // core with a key: nothing lost.
    assert_eq!(guard(&policy, "core", key()), None);
    // core with a password: password authentication off is a loss.
    let risk = guard(&policy, "core", password()).unwrap();
    assert!(risk.contains("logged in with a password"), "{risk}");
    // How the session authenticated cannot be told: fail closed, and say why.
    let risk = guard(&policy, "core", Err("no Accepted line".into())).unwrap();
    assert!(risk.contains("cannot be told (no Accepted line)"), "{risk}");
    // prohibit-password as root: only a password login is at stake.
    let mut policy = Policy::default();
    policy.sshd_config.permit_root_login = Some(PermitRootLogin::ProhibitPassword);
    assert_eq!(guard(&policy, "root", key()), None);
    let risk = guard(&policy, "root", Ok(vec!["keyboard-interactive/pam".into()])).unwrap();
    assert!(
        risk.contains("root (you) logged in with a password"),
        "{risk}"
    );
    // AllowGroups: the operator's groups count.
    policy.sshd_config.allow_groups = Some(vec![AccountName("wheel".into())]);
    let risk = guard(&policy, "core", key()).unwrap();
    assert!(
        risk.contains("AllowGroups wheel has none of core's groups (core)"),
        "{risk}"
    );
    policy.sshd_config.allow_groups = Some(vec![AccountName("core".into())]);
    assert_eq!(guard(&policy, "core", key()), None);
}

#[test]
fn effective_values_judge_compliance_with_sshd_spellings() {
    let policy = {
        let mut p = Policy::default();
        p.sshd_config.permit_root_login = Some(PermitRootLogin::ProhibitPassword);
        p.sshd_config.allow_users = Some(vec![AccountName("core".into())]);
        p
    };
    let (settings, _) = settings(&policy.sshd_config, None);
    let mut plan = Plan::managed("");
    let ok = parse_effective("permitrootlogin without-password\nallowusers core\n");
    drift::judge_effective(&mut plan, &settings, &Ok(ok), &[]);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let drift = parse_effective("permitrootlogin yes\nallowusers core\nallowusers alice\n");
    drift::judge_effective(&mut plan, &settings, &Ok(drift), &[]);
    assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
    assert!(plan.problems[0].contains("shows `permitrootlogin yes`"));
}
