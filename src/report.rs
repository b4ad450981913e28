//! What a run found and did: one entry per control, printed as text for people or as one JSON
//! document for programs (schema in docs/json-schema.md).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Compliant,
    Changed,
    WouldChange,
    PendingReboot,
    NotApplicable,
    Skipped,
    Failed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Compliant,
        Status::Changed,
        Status::WouldChange,
        Status::PendingReboot,
        Status::NotApplicable,
        Status::Skipped,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::Changed => "changed",
            Status::WouldChange => "would-change",
            Status::PendingReboot => "pending-reboot",
            Status::NotApplicable => "not-applicable",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Apply,
    DryRun,
    Check,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::DryRun => "dry-run",
            Mode::Check => "check",
        }
    }
}

/// One change made or to be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `write-file`, `unload-module`, …
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Unified diff of the file's content (absent when only mode or owner change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// One line for people: "create, mode 0440, owner 0:0", "mode 0644 -> 0440".
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    pub summary: String,
    pub changes: Vec<Change>,
    /// Warnings worth an operator's attention (lockout guard, what a reboot will bring).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub mode: Mode,
    pub root: String,
    pub policy_sources: Vec<String>,
    pub controls: Vec<ControlReport>,
    pub summary: BTreeMap<&'static str, usize>,
}

impl Report {
    pub fn new(mode: Mode, root: String, policy_sources: Vec<String>) -> Report {
        Report {
            version: 1,
            mode,
            root,
            policy_sources,
            controls: Vec::new(),
            summary: Status::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
        }
    }

    pub fn push(&mut self, control: ControlReport) {
        *self.summary.entry(control.status.as_str()).or_default() += 1;
        self.controls.push(control);
    }

    pub fn count(&self, status: Status) -> usize {
        self.summary.get(status.as_str()).copied().unwrap_or(0)
    }

    /// 0 success, 1 a control failed, 3 `check` found drift (2 is for usage and policy errors,
    /// which never get this far).
    pub fn exit_code(&self) -> i32 {
        if self.count(Status::Failed) > 0 {
            1
        } else if self.mode == Mode::Check && self.count(Status::WouldChange) > 0 {
            3
        } else {
            0
        }
    }
}

/// Text output: a header, a line per control as it finishes, a summary line.
pub struct TextWriter<W: Write> {
    out: W,
    diffs: bool,
}

impl<W: Write> TextWriter<W> {
    /// `diffs`: print the unified diff of every file written or to be written.
    pub fn new(out: W, diffs: bool) -> Self {
        TextWriter { out, diffs }
    }

    pub fn header(&mut self, report: &Report) -> std::io::Result<()> {
        writeln!(
            self.out,
            "flatcar-harden {} {} on {} (policy: {})",
            env!("CARGO_PKG_VERSION"),
            report.mode.as_str(),
            report.root,
            report.policy_sources.join(", ")
        )
    }

    pub fn control(&mut self, control: &ControlReport) -> std::io::Result<()> {
        writeln!(
            self.out,
            "{:<19} {:<15} {}",
            control.id,
            control.status.as_str(),
            control.summary
        )?;
        for change in &control.changes {
            let what = change
                .path
                .as_deref()
                .or(change.target.as_deref())
                .unwrap_or("");
            writeln!(self.out, "    {} {} ({})", change.kind, what, change.detail)?;
            if let (true, Some(diff)) = (self.diffs, &change.diff) {
                for line in diff.lines() {
                    writeln!(self.out, "      {line}")?;
                }
            }
        }
        for note in &control.notes {
            writeln!(self.out, "    note: {note}")?;
        }
        self.out.flush()
    }

    pub fn footer(&mut self, report: &Report) -> std::io::Result<()> {
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| report.count(**s) > 0)
            .map(|s| format!("{} {}", report.count(*s), s.as_str()))
            .collect();
        let nothing = match report.mode {
            Mode::Apply if report.count(Status::Changed) == 0 => " (nothing changed)",
            Mode::DryRun | Mode::Check => " (nothing was written)",
            _ => "",
        };
        writeln!(self.out, "summary: {}{nothing}", counts.join(", "))
    }
}
