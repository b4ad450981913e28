//! A copy of the fixture tree with a policy beside it, the agent run on it with that policy, and
//! the report's controls: for the integration tests of single controls.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use super::{copy_fixture, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");

/// A fresh copy of the fixture tree, with a policy file `policy.toml` beside it (outside the
/// root's /etc, so only `--policy` reads it).
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new(policy: &str) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        copy_fixture(&dir.path().join("root"));
        fs::write(dir.path().join("policy.toml"), policy).unwrap();
        Tree { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    pub fn policy(&self, content: &str) {
        fs::write(self.dir.path().join("policy.toml"), content).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--root")
            .arg(self.root())
            .arg("--policy")
            .arg(self.dir.path().join("policy.toml"))
            .env_remove("SSH_CONNECTION")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// `args` with `--format json`: exit code and the report.
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let out = self.run(&args);
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not one JSON document ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), report)
    }

    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.path(path)).unwrap()
    }

    pub fn write(&self, path: &str, content: &str) {
        let full = self.path(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, content).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(0o644)).unwrap();
    }

    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        snapshot(&self.root())
    }
}

pub fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {report}"))
}

pub fn status(report: &Value, id: &str) -> String {
    control(report, id)["status"].as_str().unwrap().to_owned()
}
