//! What a run found and did: one entry per control, printed as text for people or as one JSON
//! document for programs (schema in docs/json-schema.md).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::terminal::escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Compliant,
    Changed,
    WouldChange,
    PendingReboot,
    NotApplicable,
    Skipped,
    /// Reverted after an unconfirmed `apply --confirm-within`; left alone until the operator
    /// applies by hand or confirms that run.
    Held,
    Failed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Compliant,
        Status::Changed,
        Status::WouldChange,
        Status::PendingReboot,
        Status::NotApplicable,
        Status::Skipped,
        Status::Held,
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
            Status::Held => "held",
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
    /// `revert`: the run being reverted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    /// `apply`: the journal entry this run's changes were recorded in (none if nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalRef>,
}

/// Where an apply's changes were journaled, and until when it awaits confirmation.
#[derive(Debug, Clone, Serialize)]
pub struct JournalRef {
    pub run: String,
    /// `--confirm-within`: when the run is reverted unless confirmed (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_by: Option<String>,
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
            reverts: None,
            journal: None,
        }
    }

    pub fn push(&mut self, control: ControlReport) {
        *self.summary.entry(control.status.as_str()).or_default() += 1;
        self.controls.push(control);
    }

    pub fn count(&self, status: Status) -> usize {
        self.summary.get(status.as_str()).copied().unwrap_or(0)
    }

    /// "2 changed, 6 compliant": the statuses that occurred, in `Status::ALL` order.
    pub fn counts(&self) -> String {
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|s| format!("{} {}", self.count(*s), s.as_str()))
            .collect();
        counts.join(", ")
    }

    /// 0 success, 1 a control failed, 3 `check` found drift or held controls (2 is for usage and
    /// policy errors, which never get this far).
    pub fn exit_code(&self) -> i32 {
        if self.count(Status::Failed) > 0 {
            1
        } else if self.mode == Mode::Check
            && self.count(Status::WouldChange) + self.count(Status::Held) > 0
        {
            3
        } else {
            0
        }
    }
}

/// Text output: a header, a line per control as it finishes, a summary line. Every text taken
/// from the host or the policy is escaped (`terminal::escape`): a file name with a newline cannot
/// forge a report line. The first write error stops the output and is returned by `finish`.
pub struct TextWriter<W: Write> {
    out: W,
    diffs: bool,
    failed: Option<std::io::Error>,
}

impl<W: Write> TextWriter<W> {
    /// `diffs`: print the unified diff of every file written or to be written.
    pub fn new(out: W, diffs: bool) -> Self {
        TextWriter {
            out,
            diffs,
            failed: None,
        }
    }

    /// Writes `lines` unless an earlier write failed, then flushes, so the report follows the run.
    fn emit(&mut self, lines: &[String]) {
        if self.failed.is_some() {
            return;
        }
        let written = lines
            .iter()
            .try_for_each(|line| writeln!(self.out, "{line}"))
            .and_then(|()| self.out.flush());
        self.failed = written.err();
    }

    pub fn header(&mut self, report: &Report) {
        if let Some(run) = &report.reverts {
            let dry = if report.mode == Mode::DryRun {
                " --dry-run"
            } else {
                ""
            };
            let line = format!(
                "flatcar-harden {} revert{dry} of run {} on {}",
                env!("CARGO_PKG_VERSION"),
                escape(run),
                escape(&report.root)
            );
            return self.emit(&[line]);
        }
        let line = format!(
            "flatcar-harden {} {} on {} (policy: {})",
            env!("CARGO_PKG_VERSION"),
            report.mode.as_str(),
            escape(&report.root),
            escape(&report.policy_sources.join(", "))
        );
        self.emit(&[line]);
    }

    pub fn control(&mut self, control: &ControlReport) {
        let mut lines = vec![format!(
            "{:<19} {:<15} {}",
            control.id,
            control.status.as_str(),
            escape(&control.summary)
        )];
        for change in &control.changes {
            let what = change
                .path
                .as_deref()
                .or(change.target.as_deref())
                .unwrap_or("");
            lines.push(format!(
                "    {} {} ({})",
                change.kind,
                escape(what),
                escape(&change.detail)
            ));
            if let (true, Some(diff)) = (self.diffs, &change.diff) {
                lines.extend(diff.lines().map(|line| format!("      {}", escape(line))));
            }
        }
        for note in &control.notes {
            lines.push(format!("    note: {}", escape(note)));
        }
        self.emit(&lines);
    }

    pub fn footer(&mut self, report: &Report) {
        let nothing = match report.mode {
            Mode::Apply if report.count(Status::Changed) == 0 => " (nothing changed)",
            Mode::DryRun | Mode::Check => " (nothing was written)",
            _ => "",
        };
        let mut lines = vec![format!("summary: {}{nothing}", report.counts())];
        if let Some(journal) = &report.journal {
            lines.push(match &journal.confirm_by {
                Some(by) => format!(
                    "journal: run {0}; reverted at {by} unless `flatcar-harden confirm {0}` \
                     is run first",
                    escape(&journal.run)
                ),
                None => format!(
                    "journal: run {0} (`flatcar-harden revert {0}` undoes it)",
                    escape(&journal.run)
                ),
            });
        }
        self.emit(&lines);
    }

    /// The first write error, if any.
    pub fn finish(self) -> std::io::Result<()> {
        self.failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(summary: &str, path: &str, note: &str) -> ControlReport {
        ControlReport {
            id: "core-sudo",
            title: "core must give a password for sudo",
            status: Status::Failed,
            summary: summary.into(),
            changes: vec![Change {
                kind: "write-file",
                path: Some(path.into()),
                target: None,
                diff: Some("--- a\n+++ a\n+x\ry\n".into()),
                detail: "create".into(),
            }],
            notes: vec![note.into()],
            duration_ms: 0,
        }
    }

    #[test]
    fn host_text_cannot_forge_a_line_or_drive_the_terminal() {
        let mut out = Vec::new();
        let mut text = TextWriter::new(&mut out, true);
        text.control(&control(
            "NOPASSWD in /etc/sudoers.d/x\ncore-sudo           compliant",
            "/etc/sudoers.d/\u{1b}[2Jevil",
            "bad \u{9b}31m",
        ));
        text.finish().unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(
            !printed.chars().any(|c| c.is_control() && c != '\n'),
            "{printed:?}"
        );
        assert!(
            printed.contains("x\\ncore-sudo           compliant"),
            "{printed}"
        );
        assert!(printed.contains("/etc/sudoers.d/\\x1b[2Jevil"), "{printed}");
        assert!(printed.contains("+x\\ry"), "{printed}");
        assert!(printed.contains("note: bad \\u{9b}31m"), "{printed}");
        assert_eq!(printed.lines().count(), 6, "{printed}");
    }

    #[test]
    fn a_write_error_is_kept_and_returned() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut text = TextWriter::new(Full, false);
        text.control(&control("s", "/p", "n"));
        text.footer(&Report::new(Mode::Check, "/".into(), Vec::new()));
        assert_eq!(text.finish().unwrap_err().raw_os_error(), Some(28));
    }
}
