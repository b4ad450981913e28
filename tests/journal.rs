//! The change journal through the real binary on the Flatcar-shaped tree: a full-guide apply
//! under `--root`, then `revert --last` puts every path back as it was; a second revert changes
//! nothing; a missing run or a damaged journal is exit 2 with nothing written.

use std::collections::BTreeMap;
use std::fs;

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fresh_root, run_on, snapshot};

const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");
const RUNS: &str = "var/lib/flatcar-harden/runs";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every path with its kind, mode, owner and content or link target — not its times — leaving
/// out what apply adds beside the controls' objects: the journal (and the `/var/lib` above it,
/// which the fixture lacks) and `/etc/.pwd.lock`, the shadow-utils lock file core-login's edit
/// takes, as useradd or passwd would.
fn contents(root: &Path) -> BTreeMap<PathBuf, String> {
    let aside = ["var", "var/lib", "var/lib/flatcar-harden", "etc/.pwd.lock"];
    snapshot(root)
        .into_iter()
        .filter(|(path, _)| !aside.iter().any(|a| path == Path::new(a)))
        .filter(|(path, _)| !path.starts_with(RUNS) && !path.starts_with("var/lib/flatcar-harden"))
        .map(|(path, line)| {
            // "mode uid:gid mtime what": drop the time.
            let mut fields: Vec<&str> = line.splitn(4, ' ').collect();
            fields.remove(2);
            (path, fields.join(" "))
        })
        .collect()
}

#[test]
fn revert_last_puts_the_tree_back_and_a_second_revert_changes_nothing() {
    let root = fresh_root();
    let before = contents(root.path());
    let applied = run_on(root.path(), &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_ne!(
        contents(root.path()),
        before,
        "the full guide changes the tree"
    );
    let listed = run_on(root.path(), &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs["runs"][0]["state"], "applied");

    let reverted = run_on(root.path(), &["revert", "--last", "--format", "json"]);
    assert_eq!(reverted.status.code(), Some(0), "{}", text(&reverted));
    let report: serde_json::Value = serde_json::from_slice(&reverted.stdout).unwrap();
    assert_eq!(report["summary"]["changed"], 7, "{report}");
    assert_eq!(contents(root.path()), before);
    let listed = run_on(root.path(), &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"][0]["state"], "reverted");

    // Nothing at all is written the second time, times included.
    let once = snapshot(root.path());
    let again = run_on(root.path(), &["revert", "--last"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("7 compliant (nothing changed)"),
        "{}",
        text(&again)
    );
    assert_eq!(snapshot(root.path()), once);
}

#[test]
fn a_missing_run_or_a_damaged_journal_is_exit_2_and_nothing_is_written() {
    let root = fresh_root();
    let applied = run_on(root.path(), &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let untouched = snapshot(root.path());

    let missing = run_on(root.path(), &["revert", "20000101-000000-000"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("runs/20000101-000000-000: no such run"),
        "{}",
        text(&missing)
    );
    assert_eq!(snapshot(root.path()), untouched);

    let dir = fs::read_dir(root.path().join(RUNS))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = dir.join("000003.json");
    let damaged =
        fs::read_to_string(&record)
            .unwrap()
            .replacen("\"path\": \"/", "\"path\": \"/../../", 1);
    fs::write(&record, damaged).unwrap();
    let untouched = snapshot(root.path());
    let refused = run_on(root.path(), &["revert", "--last"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("000003.json: `/../../"),
        "{}",
        text(&refused)
    );
    assert_eq!(snapshot(root.path()), untouched);
}

/// The run's `run.json` says `state`, as `revert --deadline` leaves it.
fn set_state(root: &Path, state: &str) {
    set_field(root, "state", state.into());
}

/// Sets one field of the (only) run's `run.json`.
fn set_field(root: &Path, field: &str, value: serde_json::Value) {
    let dir = fs::read_dir(root.join(RUNS))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = dir.join("run.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    meta[field] = value;
    fs::write(&file, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

fn statuses(output: &Output) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)));
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["id"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn held_controls_stay_reverted_at_boot_until_an_apply_by_hand() {
    let root = fresh_root();
    let guide = ["--policy", FULL_GUIDE, "--format", "json"];
    let applied = run_on(root.path(), &[&["apply"][..], &guide].concat());
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let reverted = run_on(root.path(), &["revert", "--last"]);
    assert_eq!(reverted.status.code(), Some(0), "{}", text(&reverted));
    // As if the run had been reverted at its confirmation deadline.
    set_state(root.path(), "held");
    let held = "sshd-socket=held sshd-config=skipped sshd-listen=skipped docker-socket=held \
                core-sudo=held core-login=held usb-storage=held smt=held sysctl=skipped \
                kernel-lockdown=skipped console-autologin=skipped selinux=held auditd=skipped \
                etcd-locksmith-tls=not-applicable";

    let untouched = snapshot(root.path());
    let check = run_on(root.path(), &[&["check"][..], &guide].concat());
    assert_eq!(check.status.code(), Some(3), "{}", text(&check));
    assert_eq!(statuses(&check), held);
    let boot = run_on(root.path(), &[&["apply", "--boot"][..], &guide].concat());
    assert_eq!(boot.status.code(), Some(0), "{}", text(&boot));
    assert_eq!(statuses(&boot), held);
    assert_eq!(
        snapshot(root.path()),
        untouched,
        "the boot-time apply wrote"
    );

    let by_hand = run_on(root.path(), &[&["apply"][..], &guide].concat());
    assert_eq!(by_hand.status.code(), Some(0), "{}", text(&by_hand));
    assert!(
        !statuses(&by_hand).contains("held"),
        "{}",
        statuses(&by_hand)
    );
    assert!(root.path().join("etc/sudoers.d/core-passwd").exists());
    let listed = run_on(root.path(), &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"][0]["state"], "released", "{runs}");
    assert_eq!(runs["runs"][1]["state"], "applied", "{runs}");
}

#[test]
fn confirm_and_confirm_within_say_why_they_cannot() {
    let root = fresh_root();
    let nothing = run_on(root.path(), &["confirm"]);
    assert_eq!(nothing.status.code(), Some(1), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("no run awaits confirmation"),
        "{}",
        text(&nothing)
    );
    let untouched = snapshot(root.path());
    let image = run_on(
        root.path(),
        &["apply", "--policy", FULL_GUIDE, "--confirm-within", "5min"],
    );
    assert_eq!(image.status.code(), Some(2), "{}", text(&image));
    assert!(
        text(&image).contains("only works on the running system"),
        "{}",
        text(&image)
    );
    let bad = run_on(root.path(), &["apply", "--confirm-within", "5 fortnights"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert_eq!(snapshot(root.path()), untouched);
}

/// A boot-time apply that first reverts a run whose confirmation deadline passed still prints one
/// JSON document on stdout, the apply's: the revert reports on stderr (and to the journal).
#[test]
fn a_deadline_revert_before_a_json_apply_leaves_stdout_one_document() {
    let root = fresh_root();
    let guide = ["--policy", FULL_GUIDE, "--format", "json"];
    let before = contents(root.path());
    let applied = run_on(root.path(), &[&["apply"][..], &guide].concat());
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    // As `apply --confirm-within` leaves a run, with a deadline long past.
    set_state(root.path(), "awaiting-confirmation");
    set_field(root.path(), "deadline", 1.into());

    let boot = run_on(root.path(), &[&["apply", "--boot"][..], &guide].concat());
    assert_eq!(boot.status.code(), Some(0), "{}", text(&boot));
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&boot.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {}", text(&boot)));
    assert_eq!(documents.len(), 1, "{}", text(&boot));
    assert_eq!(documents[0]["mode"], "apply", "{}", documents[0]);
    let stderr = String::from_utf8_lossy(&boot.stderr);
    assert!(stderr.contains("revert of run"), "{stderr}");
    assert!(
        stderr.contains("sshd-socket"),
        "the revert's report: {stderr}"
    );
    // Reverted, then held at boot: the tree is as it was before the first apply.
    assert_eq!(contents(root.path()), before);
    assert!(
        statuses(&boot).contains("sshd-socket=held"),
        "{}",
        statuses(&boot)
    );
}
