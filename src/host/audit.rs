//! The Linux audit system as its own tools show it: the rules loaded in the kernel
//! (`auditctl -l`), loading `/etc/audit/rules.d` (`augenrules --load`), and the SELinux AVC
//! records of this boot (the audit log, and the journal's copy of the kernel's audit records).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::command::run_bounded;
use super::{Host, HostError};

/// auditd's log, where it writes every record it receives.
pub const AUDIT_LOG: &str = "/var/log/audit/audit.log";
/// How long an audit tool may take.
const LIMIT: Duration = Duration::from_secs(30);

/// A program of the audit userspace on the running host, or why it cannot be run.
fn tool(host: &Host, name: &str) -> Result<std::path::PathBuf, HostError> {
    if !host.is_live() {
        return Err(HostError::Refused(format!(
            "{name} only runs on the running system (--root /)"
        )));
    }
    host.program(name).ok_or_else(|| {
        HostError::Refused(format!(
            "{name} is not installed (looked in /usr/sbin, /usr/bin, /sbin, /bin)"
        ))
    })
}

/// `auditctl -l`: the rules in force in the kernel, one per line (`No rules` when empty).
pub fn loaded_rules(host: &Host) -> Result<String, HostError> {
    let ran = run_bounded(Command::new(tool(host, "auditctl")?).arg("-l"), None, LIMIT)?;
    if !ran.status.success() {
        return Err(HostError::Refused(format!(
            "auditctl -l failed: {}",
            ran.reason()
        )));
    }
    Ok(String::from_utf8_lossy(&ran.stdout).into_owned())
}

/// `augenrules --load`: `/etc/audit/rules.d/*.rules` merged into `/etc/audit/audit.rules` and
/// loaded into the kernel, as auditd.service (audit 3) or audit-rules.service (audit 4) do at
/// boot.
pub fn load_rules(host: &Host) -> Result<(), HostError> {
    let ran = run_bounded(
        Command::new(tool(host, "augenrules")?).arg("--load"),
        None,
        LIMIT,
    )?;
    if !ran.status.success() {
        return Err(HostError::Refused(format!(
            "augenrules --load failed: {}",
            ran.reason()
        )));
    }
    Ok(())
}

/// Lines that hold SELinux AVC records of this boot, from every place that has them, and the
/// places read. The same record may come twice (the audit log and the journal): the reader
/// de-duplicates what it summarises.
pub struct AvcLines {
    pub lines: Vec<String>,
    pub sources: Vec<String>,
}

/// This boot's AVC records: auditd's log (records stamped since the boot) when there is one,
/// and the journal's audit records of this boot (`_TRANSPORT=audit`, type 1400, which journald
/// receives whether or not auditd runs) plus the kernel's own log lines (where the kernel
/// prints audit records while no auditd listens).
pub fn avc_lines_this_boot(host: &Host) -> Result<AvcLines, HostError> {
    let mut found = AvcLines {
        lines: Vec::new(),
        sources: Vec::new(),
    };
    let booted = host
        .kernel()
        .map(|kernel| kernel.boot_time())
        .transpose()?
        .flatten();
    if let (Some(booted), Some(log)) = (booted, host.fs.read_text_lossy(Path::new(AUDIT_LOG))?) {
        found.sources.push(AUDIT_LOG.to_owned());
        found.lines.extend(
            log.lines()
                .filter(|line| line.starts_with("type=AVC ") || line.contains(" type=AVC "))
                .filter(|line| record_time(line).is_some_and(|t| t >= booted))
                .map(str::to_owned),
        );
    }
    // The journal is the running system's own (an image, or a test's fake kernel, has none).
    if !host.is_live() {
        return Ok(found);
    }
    let journalctl = host.program("journalctl").ok_or_else(|| {
        HostError::Refused(
            "journalctl is not installed: this boot's audit records are out of reach".into(),
        )
    })?;
    let ran = run_bounded(
        Command::new(journalctl).args([
            "-b",
            "-q",
            "--no-pager",
            "-o",
            "cat",
            "_TRANSPORT=audit",
            "_AUDIT_TYPE=1400",
            "+",
            "_TRANSPORT=kernel",
        ]),
        None,
        LIMIT,
    )?;
    // A journal without a matching entry is no failure, whatever the exit status says.
    if !ran.status.success() && !ran.stderr.is_empty() {
        return Err(HostError::Refused(format!(
            "journalctl could not read this boot's audit records: {}",
            ran.reason()
        )));
    }
    found
        .sources
        .push("the journal (journalctl -b _TRANSPORT=audit)".to_owned());
    found.lines.extend(
        String::from_utf8_lossy(&ran.stdout)
            .lines()
            .filter(|line| line.contains("avc:"))
            .map(str::to_owned),
    );
    Ok(found)
}

/// The seconds of an audit record's stamp, `msg=audit(1764500000.123:42)`.
fn record_time(line: &str) -> Option<u64> {
    let stamp = line.split_once("audit(")?.1;
    stamp.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::record_time;

    #[test]
    fn the_stamp_of_an_audit_record_is_read() {
        assert_eq!(
            record_time("type=AVC msg=audit(1764500000.123:42): avc:  denied"),
            Some(1_764_500_000)
        );
        assert_eq!(record_time("type=AVC msg=oops"), None);
    }
}
