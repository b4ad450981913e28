//! etcd-locksmith-tls: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::Machine;
use crate::controls::Step;
use std::fs;

/// Flatcar's own unit: the update.conf files are its environment files.
const LOCKSMITHD_UNIT: &str = "[Unit]\nDescription=Cluster reboot manager\n\n[Service]\n\
    CPUShares=16\nEnvironment=GOMAXPROCS=1\n\
    EnvironmentFile=-/usr/share/flatcar/update.conf\n\
    EnvironmentFile=-/etc/flatcar/update.conf\nExecStart=/usr/lib/locksmith/locksmithd\n";

/// A root with Flatcar's shipped update.conf.
fn flatcar_root() -> Machine {
    let tree = Machine::new("");
    tree.root_file(
        "/usr/share/flatcar/update.conf",
        "GROUP=stable\nSERVER=https://public.update.flatcar-linux.net/v1/update/\n",
    );
    tree
}

fn locksmith_tls(tree: &Machine) -> &Machine {
    for name in ["ca", "cert", "key"] {
        tree.root_file(&format!("/etc/ssl/locksmith/{name}.pem"), "PEM\n");
    }
    tree
}

fn audit(tree: &Machine) -> Plan {
    let plan = EtcdLocksmithTls::new(policy::EtcdLocksmithTls::default())
        .assess(&tree.offline())
        .unwrap();
    assert!(plan.actions.is_empty(), "an audit never writes");
    plan
}

fn findings(plan: &Plan) -> String {
    plan.problems.join("\n")
}

/// No finding, and the summary says `expected`.
fn assert_clean(plan: &Plan, expected: &str) {
    assert!(plan.problems.is_empty(), "{}", findings(plan));
    assert!(plan.summary.contains(expected), "{}", plan.summary);
}

#[test]
fn nothing_of_etcd_or_locksmith_is_not_applicable() {
    let tree = flatcar_root();
    tree.root_file("/etc/flatcar/update.conf", "REBOOT_STRATEGY=off\n");
    let plan = audit(&tree);
    assert_eq!(
        plan.disposition,
        Disposition::NotApplicable,
        "{}",
        plan.summary
    );
    assert!(
        plan.summary.contains("REBOOT_STRATEGY=off"),
        "{}",
        plan.summary
    );

    // A masked locksmithd counts as absent.
    tree.root_file(
        "/usr/lib/systemd/system/locksmithd.service",
        LOCKSMITHD_UNIT,
    );
    let etc_units = tree.root.join("etc/systemd/system");
    fs::create_dir_all(&etc_units).unwrap();
    std::os::unix::fs::symlink("/dev/null", etc_units.join("locksmithd.service")).unwrap();
    assert_eq!(audit(&tree).disposition, Disposition::NotApplicable);
}

#[test]
fn locksmithd_without_etcd_lock_is_compliant() {
    let tree = flatcar_root();
    tree.root_file(
        "/usr/lib/systemd/system/locksmithd.service",
        LOCKSMITHD_UNIT,
    )
    .root_file("/etc/flatcar/update.conf", "REBOOT_STRATEGY=reboot\n");
    let plan = audit(&tree);
    assert_eq!(plan.disposition, Disposition::Managed);
    assert_clean(&plan, "does not use etcd");
}

#[test]
fn etcd_lock_over_the_default_http_endpoint_without_certificates() {
    let tree = flatcar_root();
    tree.root_file(
        "/usr/lib/systemd/system/locksmithd.service",
        LOCKSMITHD_UNIT,
    )
    .root_file(
        "/etc/flatcar/update.conf",
        "GROUP=stable\nREBOOT_STRATEGY=etcd-lock\n",
    );
    let plan = audit(&tree);
    let text = findings(&plan);
    assert!(
        text.contains("/etc/flatcar/update.conf:2: REBOOT_STRATEGY=etcd-lock, but LOCKSMITHD_ENDPOINT is not set")
            && text.contains("http://127.0.0.1:2379"),
        "{text}"
    );
    for key in LOCKSMITH_TLS_FILES {
        assert!(text.contains(&format!("{key} is not set")), "{text}");
    }
    assert_eq!(plan.problems.len(), 4, "each finding once: {text}");
}

#[test]
fn http_endpoint_in_a_dropin_is_named_by_file_and_line() {
    let tree = flatcar_root();
    locksmith_tls(&tree)
        .root_file(
            "/usr/lib/systemd/system/locksmithd.service",
            LOCKSMITHD_UNIT,
        )
        .root_file("/etc/flatcar/update.conf", "REBOOT_STRATEGY=etcd-lock\n")
        .root_file(
            "/etc/systemd/system/locksmithd.service.d/20-etcd.conf",
            "[Service]\n\
             Environment=\"LOCKSMITHD_ENDPOINT=https://10.0.0.1:2379,http://10.0.0.2:2379\"\n\
             Environment=LOCKSMITHD_ETCD_CAFILE=/etc/ssl/locksmith/ca.pem \\\n\
               LOCKSMITHD_ETCD_CERTFILE=/etc/ssl/locksmith/cert.pem\n\
             Environment=LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/locksmith/missing.pem\n",
        );
    let plan = audit(&tree);
    let text = findings(&plan);
    let dropin = "/etc/systemd/system/locksmithd.service.d/20-etcd.conf";
    assert!(
        text.contains(&format!(
            "{dropin}:2: LOCKSMITHD_ENDPOINT http://10.0.0.2:2379 is not https://"
        )),
        "{text}"
    );
    assert!(!text.contains("10.0.0.1"), "{text}");
    assert!(
        text.contains(&format!(
            "{dropin}:5: LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/locksmith/missing.pem: no such file"
        )),
        "{text}"
    );
    assert_eq!(plan.problems.len(), 2, "{text}");
}

#[test]
fn etcd_lock_over_https_with_all_three_files_is_compliant() {
    let tree = flatcar_root();
    locksmith_tls(&tree)
        .root_file(
            "/usr/lib/systemd/system/locksmithd.service",
            LOCKSMITHD_UNIT,
        )
        .root_file(
            "/etc/flatcar/update.conf",
            "REBOOT_STRATEGY=etcd-lock\n\
             LOCKSMITHD_ENDPOINT=https://10.0.0.1:2379\n\
             LOCKSMITHD_ETCD_CAFILE=/etc/ssl/locksmith/ca.pem\n\
             LOCKSMITHD_ETCD_CERTFILE=/etc/ssl/locksmith/cert.pem\n\
             LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/locksmith/key.pem\n",
        );
    let plan = audit(&tree);
    assert_eq!(plan.disposition, Disposition::Managed);
    assert_clean(&plan, "TLS throughout");
}

#[test]
fn passwords_in_world_readable_files_are_findings() {
    let tree = flatcar_root();
    locksmith_tls(&tree)
        .root_file(
            "/usr/lib/systemd/system/locksmithd.service",
            LOCKSMITHD_UNIT,
        )
        .root_file(
            "/etc/systemd/system/locksmithd.service.d/30-auth.conf",
            "[Service]\nEnvironmentFile=/etc/locksmith/auth.env\n",
        )
        .root_file(
            "/etc/locksmith/auth.env",
            "LOCKSMITHD_ETCD_USERNAME=reboot\nLOCKSMITHD_ETCD_PASSWORD=hunter2\n",
        )
        .root_file(
            "/etc/flatcar/update.conf",
            "REBOOT_STRATEGY=etcd-lock\n\
             LOCKSMITHD_ENDPOINT=https://10.0.0.1:2379\n\
             LOCKSMITHD_ETCD_CAFILE=/etc/ssl/locksmith/ca.pem\n\
             LOCKSMITHD_ETCD_CERTFILE=/etc/ssl/locksmith/cert.pem\n\
             LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/locksmith/key.pem\n",
        );
    let text = findings(&audit(&tree));
    assert!(
        text.contains("/etc/locksmith/auth.env:2: LOCKSMITHD_ETCD_PASSWORD is in a world-readable file (mode 0644)"),
        "{text}"
    );
    tree.chmod("/etc/locksmith/auth.env", 0o600);
    assert!(audit(&tree).problems.is_empty());

    // update_engine's password, even with no locksmith or etcd around.
    let tree = flatcar_root();
    tree.root_file(
        "/etc/flatcar/update.conf",
        "DOWNLOAD_USER=me\nDOWNLOAD_PASSWORD=secret\n",
    );
    let plan = audit(&tree);
    assert_eq!(plan.disposition, Disposition::Managed);
    assert!(findings(&plan).contains("/etc/flatcar/update.conf:2: DOWNLOAD_PASSWORD"));

    // In a unit's Environment=, `systemctl show` gives it to everyone.
    let tree = flatcar_root();
    tree.root_file(
        "/usr/lib/systemd/system/locksmithd.service",
        LOCKSMITHD_UNIT,
    )
    .root_file(
        "/etc/systemd/system/locksmithd.service.d/30-auth.conf",
        "[Service]\nEnvironment=LOCKSMITHD_ETCD_PASSWORD=hunter2\n",
    )
    .chmod(
        "/etc/systemd/system/locksmithd.service.d/30-auth.conf",
        0o600,
    );
    assert!(findings(&audit(&tree)).contains("systemctl show"));
}

#[test]
fn etcd_member_urls_and_certificates() {
    let tree = flatcar_root();
    tree.root_file(
        "/usr/lib/systemd/system/etcd-member.service",
        "[Service]\nExecStart=/usr/lib/flatcar/etcd-wrapper $ETCD_OPTS\n",
    )
    .root_file(
        "/etc/systemd/system/etcd-member.service.d/20-clct-etcd-member.conf",
        "[Service]\n\
         Environment=\"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379\"\n\
         Environment=\"ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379\"\n",
    );
    let text = findings(&audit(&tree));
    let dropin = "/etc/systemd/system/etcd-member.service.d/20-clct-etcd-member.conf";
    assert!(
        text.contains(&format!(
            "{dropin}:2: ETCD_LISTEN_CLIENT_URLS http://0.0.0.0:2379 is not https://"
        )),
        "{text}"
    );
    assert!(!text.contains("ETCD_ADVERTISE_CLIENT_URLS"), "{text}");
    assert!(
        text.contains("/usr/lib/systemd/system/etcd-member.service: etcd-member.service does not set ETCD_LISTEN_PEER_URLS"),
        "{text}"
    );
    for key in ETCD_TLS_FILES {
        assert!(text.contains(&format!("{key} is not set")), "{text}");
    }
    assert!(text.contains("ETCD_CLIENT_CERT_AUTH=true"), "{text}");

    // All of it over TLS, in an environment file.
    for name in ["server", "server-key", "ca", "peer", "peer-key"] {
        tree.root_file(&format!("/etc/ssl/etcd/{name}.pem"), "PEM\n");
    }
    tree.root_file(
        "/etc/systemd/system/etcd-member.service.d/20-clct-etcd-member.conf",
        "[Service]\nEnvironmentFile=/etc/etcd/etcd.env\n",
    )
    .root_file(
        "/etc/etcd/etcd.env",
        "ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\n\
         ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379\n\
         ETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n\
         ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:2380\n\
         ETCD_CERT_FILE=/etc/ssl/etcd/server.pem\n\
         ETCD_KEY_FILE=/etc/ssl/etcd/server-key.pem\n\
         ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ca.pem\n\
         ETCD_PEER_CERT_FILE=/etc/ssl/etcd/peer.pem\n\
         ETCD_PEER_KEY_FILE=/etc/ssl/etcd/peer-key.pem\n\
         ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/etcd/ca.pem\n\
         ETCD_CLIENT_CERT_AUTH=true\n",
    );
    let plan = audit(&tree);
    assert_clean(&plan, "etcd-member.service");
}

#[test]
fn plain_urls_are_the_ones_without_tls() {
    assert_eq!(
        plain_urls("https://a:2379, http://b:2379,unixs://c"),
        ["http://b:2379"]
    );
}
