//! The change journal: before each action of an apply, the prior state of what it touches is
//! recorded under `/var/lib/flatcar-harden/runs/<run-id>/` in the root, so `revert` can put it
//! back. Written by [`record`], read back as untrusted data by [`read`], undone by [`revert`];
//! [`confirm`] holds `apply --confirm-within`'s timer and the boot-time catch-up.

pub mod confirm;
mod object;
pub mod read;
pub mod record;
pub mod revert;
mod time;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use record::{before, Recorder};
pub use time::{parse_duration, utc};

/// Where the runs live, inside the root.
pub const RUNS_DIR: &str = "/var/lib/flatcar-harden/runs";
/// The directories above a run, each created 0700 and checked on read.
pub const JOURNAL_DIRS: [&str; 2] = ["/var/lib/flatcar-harden", RUNS_DIR];
/// The file describing a run; its records are `000001.json`, `000002.json`, ….
pub const RUN_FILE: &str = "run.json";
/// Version of the journal's file format.
pub const FORMAT: u32 = 1;

/// The directory of one run.
pub fn run_dir(id: &str) -> PathBuf {
    Path::new(RUNS_DIR).join(id)
}

/// The file of record `seq` of a run.
pub fn record_file(id: &str, seq: u32) -> PathBuf {
    run_dir(id).join(format!("{seq:06}.json"))
}

/// Where a run stands towards `confirm` and `revert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Applied without `--confirm-within`: stays until reverted by hand.
    Applied,
    /// Applied with `--confirm-within`: reverted at `deadline` unless confirmed first.
    AwaitingConfirmation,
    Confirmed,
    /// Reverted by `flatcar-harden revert`.
    Reverted,
    /// Reverted because its deadline passed: its controls are `held` until the operator runs
    /// `apply` by hand or confirms the run.
    Held,
    /// Was held; the operator has since let apply put the controls back.
    Released,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Applied => "applied",
            RunState::AwaitingConfirmation => "awaiting-confirmation",
            RunState::Confirmed => "confirmed",
            RunState::Reverted => "reverted",
            RunState::Held => "held",
            RunState::Released => "released",
        }
    }
}

/// `run.json`: what a run was and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMeta {
    pub format: u32,
    pub id: String,
    /// Seconds since the epoch (UTC) when the first change was recorded.
    pub started: u64,
    /// The command line, for people (`flatcar-harden apply --confirm-within 5min`).
    pub command: String,
    pub state: RunState,
    /// With `--confirm-within`: seconds since the epoch when the run is reverted unless confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// Seconds since the epoch of the last state change (confirm, revert, hold, release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<u64>,
}

/// A journal that cannot be used as it is: the file and what is wrong. Exit 2, nothing written.
#[derive(Debug, thiserror::Error)]
#[error("journal: {file}: {reason}")]
pub struct JournalError {
    pub file: String,
    pub reason: String,
}

impl JournalError {
    pub fn new(file: impl AsRef<Path>, reason: impl Into<String>) -> JournalError {
        JournalError {
            file: file.as_ref().display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
