//! Test support for controls with a runtime half: a root tree and, beside it, a fake running
//! kernel (`/sys`, `/proc/cmdline`), and a one-control run through the real engine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Plan, Step};
use crate::engine;
use crate::host::Host;
use crate::policy::Policy;
use crate::report::{ControlReport, Mode};

/// A root tree and a fake running kernel in one temporary directory.
pub struct Machine {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub kernel: PathBuf,
}

impl Machine {
    /// An empty root, and a kernel booted with `cmdline`.
    pub fn new(cmdline: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let machine = Machine {
            root: dir.path().join("root"),
            kernel: dir.path().join("kernel"),
            _dir: dir,
        };
        fs::create_dir_all(&machine.root).unwrap();
        machine.kernel_file("/proc/cmdline", cmdline);
        machine
    }

    /// Writes a file of the fake kernel (`/sys/…`, `/proc/…`), creating its directories.
    pub fn kernel_file(&self, path: &str, content: &str) {
        write(&self.kernel, path, content);
    }

    /// Writes a file under the root (mode 0644), creating its directories.
    pub fn root_file(&self, path: &str, content: &str) -> &Machine {
        write(&self.root, path, content);
        self.chmod(path, 0o644)
    }

    /// Sets the mode of a file under the root.
    pub fn chmod(&self, path: &str, mode: u32) -> &Machine {
        let full = self.root.join(path.trim_start_matches('/'));
        fs::set_permissions(full, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn read_kernel(&self, path: &str) -> String {
        fs::read_to_string(self.kernel.join(path.trim_start_matches('/'))).unwrap()
    }

    pub fn read_root(&self, path: &str) -> String {
        fs::read_to_string(self.root.join(path.trim_start_matches('/'))).unwrap()
    }

    /// The running host: the root, with the fake kernel as its kernel.
    pub fn with_kernel(&self) -> Host {
        Host::open(&self.root).unwrap().with_kernel(&self.kernel)
    }

    /// An image: the root alone, no running kernel.
    pub fn offline(&self) -> Host {
        Host::open(&self.root).unwrap()
    }
}

fn write(base: &Path, path: &str, content: &str) {
    let full = base.join(path.trim_start_matches('/'));
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

/// Runs one control through the engine (plan, apply, verify) and returns its report.
pub fn run(host: &Host, policy: &Policy, step: Box<dyn Step>, mode: Mode) -> ControlReport {
    let mut reports = Vec::new();
    engine::run(host, policy, &[step], mode, &mut |r| reports.push(r));
    reports.pop().unwrap()
}

/// Starts a change journal on `host`, as `apply` does, recording the actions of `control`.
pub fn start_journal(host: &Host, control: &'static str) {
    let mut recorder = crate::journal::Recorder::new("test apply".into(), 20);
    recorder.set_control(control);
    host.journal.replace(Some(recorder));
}

/// Closes the journal and reverts its run, as `flatcar-harden revert --last` does; returns the
/// revert's plan.
pub fn revert(host: &Host) -> Plan {
    host.journal.replace(None);
    let id = crate::journal::read::last_id(host)
        .unwrap()
        .expect("a run was journaled");
    let run = crate::journal::read::load(host, &id).unwrap();
    let steps = crate::journal::revert::steps(&run, &[], false);
    assert_eq!(steps.len(), 1, "one control in the run");
    let plan = steps[0].assess(host).unwrap();
    steps[0].apply(host, &plan).unwrap();
    plan
}

/// Summary and notes in one line, for assertion messages.
pub fn text(report: &ControlReport) -> String {
    format!("{} | {}", report.summary, report.notes.join(" | "))
}
