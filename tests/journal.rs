//! The change journal through the real binary on the Flatcar-shaped tree: a full-guide apply
//! under `--root`, then `revert --last` puts every path back as it was; a second revert changes
//! nothing; a missing run or a damaged journal is exit 2 with nothing written.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{copy_fixture, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");
const RUNS: &str = "var/lib/flatcar-harden/runs";

fn flatcar() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    fs::set_permissions(
        dir.path().join("etc/sudoers.d"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    dir
}

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--root")
        .arg(root)
        .env_remove("SSH_CONNECTION")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

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
    let root = flatcar();
    let before = contents(root.path());
    let applied = run(root.path(), &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_ne!(
        contents(root.path()),
        before,
        "the full guide changes the tree"
    );
    let listed = run(root.path(), &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs["runs"][0]["state"], "applied");

    let reverted = run(root.path(), &["revert", "--last", "--format", "json"]);
    assert_eq!(reverted.status.code(), Some(0), "{}", text(&reverted));
    let report: serde_json::Value = serde_json::from_slice(&reverted.stdout).unwrap();
    assert_eq!(report["summary"]["changed"], 7, "{report}");
    assert_eq!(contents(root.path()), before);
    let listed = run(root.path(), &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"][0]["state"], "reverted");

    // Nothing at all is written the second time, times included.
    let once = snapshot(root.path());
    let again = run(root.path(), &["revert", "--last"]);
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
    let root = flatcar();
    let applied = run(root.path(), &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let untouched = snapshot(root.path());

    let missing = run(root.path(), &["revert", "20000101-000000-000"]);
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
    let refused = run(root.path(), &["revert", "--last"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("000003.json: `/../../"),
        "{}",
        text(&refused)
    );
    assert_eq!(snapshot(root.path()), untouched);
}
