//! The sudo programs the agent runs, each bounded by a timeout: `visudo` to validate a sudoers
//! file before it is written (a sudoers file with a syntax error makes sudo refuse to run at all,
//! for everyone), and on a live host `sudo -l -U USER`, to ask sudo itself what it grants.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::command::run_bounded;
use super::{Host, HostError};

/// visudo parses one small file; 30 s means it hangs (a stuck NSS lookup, a FIFO include).
pub const VISUDO_TIMEOUT: Duration = Duration::from_secs(30);
const SUDO_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// visudo's answer on a sudoers text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    Valid,
    /// visudo's own message.
    Invalid(String),
    /// No visudo on this machine.
    Unavailable,
}

/// What `sudo -l -U USER` shows, reduced to what the reader can be compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// A command line shown with `NOPASSWD:`.
    pub nopasswd: bool,
    /// `!authenticate` among the Defaults shown.
    pub no_authenticate: bool,
}

impl Host {
    /// `visudo -c -f -` on a sudoers text (given on stdin: nothing outside the root is read).
    pub fn visudo_validate(&self, text: &[u8]) -> Result<Validity, HostError> {
        let Some(visudo) = self.program("visudo") else {
            return Ok(Validity::Unavailable);
        };
        let mut command = Command::new(&visudo);
        command.args(["-c", "-f", "-"]);
        let ran = run_bounded(&mut command, Some(text), VISUDO_TIMEOUT)?;
        if ran.status.success() {
            return Ok(Validity::Valid);
        }
        // The errors, not the warnings about unused aliases that come with them.
        let errors: Vec<String> = ran
            .reason()
            .lines()
            .filter(|l| !l.starts_with("Warning:") && !l.ends_with("parsed OK"))
            .map(str::to_owned)
            .collect();
        Ok(Validity::Invalid(errors.join("; ")))
    }

    /// `visudo -c -f FILE` on a candidate file (a host path). `Ok(false)`: not validated because
    /// the run was asked not to (`--no-validate`); a missing visudo is otherwise an error.
    pub fn visudo_check_file(&self, host_path: &Path) -> Result<bool, HostError> {
        let Some(visudo) = self.visudo_or_refuse()? else {
            return Ok(false);
        };
        let mut command = Command::new(&visudo);
        command.arg("-c").arg("-f").arg(host_path);
        refuse_unless_ok(&mut command)?;
        Ok(true)
    }

    /// `visudo -c`: the whole live configuration (main file, every include) still parses. Only
    /// meaningful on a live host: in an image, the includes would resolve against the build machine.
    pub fn visudo_check_all(&self) -> Result<bool, HostError> {
        if !self.is_live() {
            return Ok(false);
        }
        let Some(visudo) = self.visudo_or_refuse()? else {
            return Ok(false);
        };
        refuse_unless_ok(Command::new(&visudo).arg("-c"))?;
        Ok(true)
    }

    fn visudo_or_refuse(&self) -> Result<Option<std::path::PathBuf>, HostError> {
        match self.program("visudo") {
            Some(visudo) => Ok(Some(visudo)),
            None if self.skip_sudoers_validation => Ok(None),
            None => Err(HostError::Refused(format!(
                "visudo is not installed {}, so the sudoers file cannot be validated before it \
                 is written; install sudo there, or pass --no-validate to write it unvalidated",
                if self.is_live() {
                    "on this host"
                } else {
                    "on this build machine"
                }
            ))),
        }
    }

    /// `sudo -n -l -U user` on the running system. `Err` with a reason when there is no sudo
    /// or it cannot answer.
    pub fn sudo_list(&self, user: &str) -> Result<Listing, String> {
        if !self.is_live() {
            return Err("not the running system".into());
        }
        let sudo = self
            .program("sudo")
            .ok_or_else(|| "sudo is not installed".to_owned())?;
        let mut command = Command::new(&sudo);
        command.args(["-n", "-l", "-U", user]).env("LC_ALL", "C");
        let ran = run_bounded(&mut command, None, SUDO_LIST_TIMEOUT).map_err(|e| e.to_string())?;
        if !ran.status.success() {
            return Err(format!("`sudo -l -U {user}` failed: {}", ran.reason()));
        }
        Ok(parse_listing(&String::from_utf8_lossy(&ran.stdout)))
    }
}

/// Reads `sudo -l` output: the Defaults sections come first, then "User … may run the following
/// commands on …:" and one line per privilege, tags as `NOPASSWD:`.
pub fn parse_listing(text: &str) -> Listing {
    let mut listing = Listing {
        nopasswd: false,
        no_authenticate: false,
    };
    let mut in_commands = false;
    for line in text.lines() {
        if line.starts_with("User ") {
            in_commands = line.contains(" may run the following commands");
            continue;
        }
        if in_commands {
            listing.nopasswd |= line.contains("NOPASSWD:");
        } else if line.starts_with(char::is_whitespace) {
            listing.no_authenticate |= line
                .split(|c: char| c == ',' || c.is_whitespace())
                .any(|word| word == "!authenticate");
        }
    }
    listing
}

fn refuse_unless_ok(command: &mut Command) -> Result<(), HostError> {
    let ran = run_bounded(command, None, VISUDO_TIMEOUT)?;
    if ran.status.success() {
        return Ok(());
    }
    Err(HostError::Refused(format!(
        "visudo rejected the sudoers configuration ({}): {}",
        ran.shown,
        ran.reason()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_listing_as_sudo_1_9_prints_it() {
        let text = "Matching Defaults entries for core on vm:\n    env_reset, mail_badpass\n\n\
                    Runas and Command-specific defaults for core:\n    Defaults>bob !authenticate    \
                    Defaults!/usr/bin/id !authenticate\n\n\
                    User core may run the following commands on vm:\n    (ALL) NOPASSWD: /usr/bin/id, PASSWD: ALL\n    (ALL) ALL\n";
        assert_eq!(
            parse_listing(text),
            Listing {
                nopasswd: true,
                no_authenticate: true
            }
        );
        let text = "User core may run the following commands on vm:\n    (ALL) ALL\n";
        assert_eq!(
            parse_listing(text),
            Listing {
                nopasswd: false,
                no_authenticate: false
            }
        );
        assert!(!parse_listing("User core is not allowed to run sudo on vm.\n").nopasswd);
    }
}
