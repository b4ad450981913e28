//! Prometheus textfile metrics of a run, for node_exporter's textfile collector. The names and
//! labels are a contract (docs/fleet.md): keep them stable.
//!
//! apply and check share one file: each run writes every control's status, the pending reboot
//! and the build info as it found them, and its own `command` series; the other command's
//! last-run series are carried over from the previous file, so both stay visible and nothing a
//! run did not see survives it (node_exporter would refuse the same series from two files).

mod file;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::report::{Mode, Report, Status};

pub use file::{read_previous, write_atomic, MetricsError};

/// The commands with their own last-run series, as the `command` label spells them.
const COMMANDS: [&str; 2] = ["apply", "check"];

/// The per-command series, in the order they are written.
const RUN_SERIES: [(&str, &str); 3] = [
    (
        "flatcar_harden_last_run_timestamp_seconds",
        "Unix time at which the last run of the command finished.",
    ),
    (
        "flatcar_harden_last_run_success",
        "1 when the last run of the command exited 0 (compliant, or applied), else 0.",
    ),
    (
        "flatcar_harden_run_duration_seconds",
        "Wall-clock duration of the last run of the command, in seconds.",
    ),
];

/// What a finished run adds to its report.
pub struct Run<'a> {
    pub report: &'a Report,
    /// The exit code the run ends with.
    pub exit_code: u8,
    pub finished: SystemTime,
    pub duration: Duration,
    /// The effective policy as `policy show` prints it after its header.
    pub policy_toml: &'a str,
}

/// The `command` label of a mode; a dry run writes no metrics.
pub fn command(mode: Mode) -> Option<&'static str> {
    match mode {
        Mode::Apply => Some("apply"),
        Mode::Check => Some("check"),
        Mode::DryRun => None,
    }
}

/// sha256 of the effective policy, hex: `flatcar-harden policy show | sed '1,/^$/d' | sha256sum`.
pub fn policy_sha256(policy_toml: &str) -> String {
    Sha256::digest(policy_toml.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The text of the metrics file for `run`; `previous` is the file it replaces (if any), whose
/// last-run series of the other command are kept.
pub fn render(run: &Run, previous: &str) -> String {
    let this = command(run.report.mode).expect("a dry run writes no metrics");
    let mut out = String::new();
    family(
        &mut out,
        "flatcar_harden_control_status",
        "Status of each control in the last run: one series per status, 1 for the current one.",
    );
    for control in &run.report.controls {
        for status in Status::ALL {
            let _ = writeln!(
                out,
                "flatcar_harden_control_status{{control=\"{}\",status=\"{}\"}} {}",
                label(control.id),
                status.as_str(),
                u8::from(control.status == status)
            );
        }
    }
    for (name, help) in RUN_SERIES {
        family(&mut out, name, help);
        for command in COMMANDS {
            let value = if command == this {
                Some(match name {
                    "flatcar_harden_last_run_timestamp_seconds" => seconds(
                        run.finished
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap_or_default(),
                    ),
                    "flatcar_harden_last_run_success" => u8::from(run.exit_code == 0).to_string(),
                    _ => seconds(run.duration),
                })
            } else {
                previous_value(previous, name, command)
            };
            if let Some(value) = value {
                let _ = writeln!(out, "{name}{{command=\"{command}\"}} {value}");
            }
        }
    }
    family(
        &mut out,
        "flatcar_harden_pending_reboot",
        "1 when a control waits for a reboot to take effect, else 0.",
    );
    let pending = run.report.count(Status::PendingReboot) > 0;
    let _ = writeln!(out, "flatcar_harden_pending_reboot {}", u8::from(pending));
    family(
        &mut out,
        "flatcar_harden_build_info",
        "Version of the agent and sha256 of the effective policy; always 1.",
    );
    let _ = writeln!(
        out,
        "flatcar_harden_build_info{{version=\"{}\",policy_sha256=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        policy_sha256(run.policy_toml)
    );
    out
}

/// A family's `# HELP` and `# TYPE` lines; every family is a gauge.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The value of `name{command="command"}` in a previous file, if it is a number.
fn previous_value(previous: &str, name: &str, command: &str) -> Option<String> {
    let prefix = format!("{name}{{command=\"{command}\"}} ");
    previous
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::trim)
        .find(|value| value.parse::<f64>().is_ok_and(f64::is_finite))
        .map(str::to_owned)
}

/// Where the metrics go: the flag wins over the policy; a dry run writes none.
pub fn target<'a>(
    mode: Mode,
    flag: Option<&'a Path>,
    policy: Option<&'a Path>,
) -> Option<&'a Path> {
    command(mode)?;
    flag.or(policy)
}

#[cfg(test)]
mod tests;
