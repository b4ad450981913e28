//! The OpenSSH programs the agent runs, each bounded by a timeout: `sshd -t` to validate a
//! configuration before it is put in place (sshd refuses to start on a bad one: every new SSH
//! connection would fail), `sshd -T` for the values in force, `ssh -Q` for the algorithms this
//! OpenSSH knows, and `journalctl` for how an SSH login authenticated (sshd's "Accepted" line).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::command::run_bounded;
use super::{Host, HostError};

/// sshd parses a few small files; 30 s means it hangs.
const SSHD_TIMEOUT: Duration = Duration::from_secs(30);
/// sshd's main configuration file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// The connection `sshd -T -C` evaluates `Match` blocks for: core, Flatcar's login, from
/// loopback.
pub const CONNECTION_SPEC: &str = "user=core,host=localhost,addr=127.0.0.1";

/// `sshd -T` output: each lowercase keyword with its values (one per line sshd printed: list
/// keywords such as `allowusers` print one line per entry).
pub type Effective = BTreeMap<String, Vec<String>>;

/// Reads `sshd -T` output.
pub fn parse_effective(text: &str) -> Effective {
    let mut effective = Effective::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if !key.is_empty() {
            effective
                .entry(key.to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    effective
}

impl Host {
    /// Whether sshd is installed on the running system.
    pub fn has_sshd(&self) -> bool {
        self.is_live() && self.program("sshd").is_some()
    }

    /// `sshd -T -C CONNECTION_SPEC`: the values in force for a new connection. `main`: a main
    /// configuration given on stdin instead of sshd_config (empty: OpenSSH's defaults).
    pub fn sshd_effective(&self, main: Option<&str>) -> Result<Effective, HostError> {
        let ran = self.sshd(&["-T", "-C", CONNECTION_SPEC], main)?;
        if !ran.status.success() {
            return Err(HostError::Refused(format!(
                "`sshd -T` cannot read the configuration: {}",
                ran.reason()
            )));
        }
        Ok(parse_effective(&String::from_utf8_lossy(&ran.stdout)))
    }

    /// `sshd -t` on the configuration as it will be once `candidate` (a host path) is in place:
    /// a main file on stdin includes the candidate first, then sshd_config (whose own include
    /// does not match the candidate's hidden temporary name).
    pub fn sshd_check_candidate(&self, candidate: &Path) -> Result<(), HostError> {
        if !self.is_live() {
            return Ok(());
        }
        let main = format!(
            "Include \"{}\"\nInclude \"{SSHD_CONFIG}\"\n",
            candidate.display()
        );
        let ran = self.sshd(&["-t"], Some(&main))?;
        if ran.status.success() {
            return Ok(());
        }
        let reason = ran.reason();
        let reason: Vec<&str> = reason.lines().map(str::trim).collect();
        Err(HostError::Refused(format!(
            "sshd -t rejects the configuration with the new drop-in, so it was not put in place: \
             {}",
            reason.join("; ")
        )))
    }

    /// `ssh -Q WHAT` (`kex`, `cipher`, `mac`, …): the names this OpenSSH knows.
    pub fn ssh_query(&self, what: &str) -> Result<Vec<String>, HostError> {
        let ssh = self
            .program("ssh")
            .ok_or_else(|| HostError::Refused("ssh is not installed".into()))?;
        let ran = run_bounded(Command::new(ssh).args(["-Q", what]), None, SSHD_TIMEOUT)?;
        if !ran.status.success() {
            return Err(HostError::Refused(format!(
                "`ssh -Q {what}` failed: {}",
                ran.reason()
            )));
        }
        Ok(String::from_utf8_lossy(&ran.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn sshd(&self, args: &[&str], main: Option<&str>) -> Result<super::command::Ran, HostError> {
        let sshd = self
            .program("sshd")
            .ok_or_else(|| HostError::Refused("sshd is not installed".into()))?;
        let mut command = Command::new(sshd);
        command.args(args).env("LC_ALL", "C");
        if main.is_some() {
            command.args(["-f", "/dev/stdin"]);
        }
        run_bounded(&mut command, main.map(str::as_bytes), SSHD_TIMEOUT)
    }
}

/// How an SSH login authenticated: the methods of sshd's `Accepted METHOD for USER …` (and
/// `Partial …` with several `AuthenticationMethods`) lines logged by `leader`, the session's
/// leader (the `sshd` process of that connection), in this boot's journal. With socket
/// activation sshd logs to its unit's stream, so the unit of the leader is asked too.
pub fn accepted_methods(leader: u32, user: &str) -> Result<Vec<String>, String> {
    let matches = match super::session::sshd_unit(leader) {
        Ok(Some(unit)) => vec![format!("_SYSTEMD_UNIT={unit}")],
        _ => vec![format!("_PID={leader}")],
    };
    let journalctl = super::system_program("journalctl")
        .ok_or_else(|| "journalctl is not installed".to_owned())?;
    let mut command = Command::new(journalctl);
    command
        .args(["-b", "-q", "--no-pager", "-o", "cat"])
        .args(&matches)
        .env("LC_ALL", "C");
    let ran = run_bounded(&mut command, None, SSHD_TIMEOUT).map_err(|e| e.to_string())?;
    if !ran.status.success() {
        return Err(format!("journalctl failed: {}", ran.reason()));
    }
    let methods = parse_accepted(&String::from_utf8_lossy(&ran.stdout), user);
    if methods.is_empty() {
        return Err(format!(
            "the journal has no sshd \"Accepted … for {user}\" line of {} (process {leader})",
            matches.join(" ")
        ));
    }
    Ok(methods)
}

/// The methods of `Accepted METHOD for USER from …` and `Partial METHOD for USER …` lines.
pub fn parse_accepted(text: &str, user: &str) -> Vec<String> {
    let mut methods: Vec<String> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["Accepted" | "Partial", method, "for", who, ..] = words.as_slice() {
            if *who == user && !methods.iter().any(|m| m == method) {
                methods.push((*method).to_owned());
            }
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_lists_keep_every_line() {
        let effective = parse_effective(
            "permitrootlogin without-password\nallowusers core\nallowusers root\nciphers a,b\n",
        );
        assert_eq!(effective["allowusers"], ["core", "root"]);
        assert_eq!(effective["permitrootlogin"], ["without-password"]);
    }

    #[test]
    fn accepted_lines_name_the_method_for_that_user_only() {
        let log = "Connection from 10.0.2.2 port 5 on 10.0.2.15 port 22 rdomain \"\"\n\
                   Accepted publickey for root from 10.0.2.2 port 5 ssh2: ED25519 SHA256:x\n\
                   Partial publickey for core from 10.0.2.2 port 6 ssh2\n\
                   Accepted password for core from 10.0.2.2 port 6 ssh2\n\
                   pam_unix(sshd:session): session opened for user root(uid=0)\n";
        assert_eq!(parse_accepted(log, "root"), ["publickey"]);
        assert_eq!(parse_accepted(log, "core"), ["publickey", "password"]);
        assert!(parse_accepted(log, "nobody").is_empty());
    }
}
