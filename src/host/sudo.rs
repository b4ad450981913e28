//! `visudo`, the only external program on the agent's path, run only when a sudoers file is about
//! to be written: a sudoers file with a syntax error makes sudo refuse to run at all, for everyone.

use std::path::Path;
use std::process::Command;

use super::{Host, HostError};

impl Host {
    /// `visudo -c -f FILE` on a candidate file (a host path). `Ok(false)` when no visudo exists.
    pub fn visudo_check_file(&self, host_path: &Path) -> Result<bool, HostError> {
        let Some(visudo) = self.program("visudo") else {
            return Ok(false);
        };
        run_visudo(
            Command::new(&visudo)
                .arg("-c")
                .arg("-q")
                .arg("-f")
                .arg(host_path),
        )?;
        Ok(true)
    }

    /// `visudo -c`: the whole live configuration (main file, every include) still parses. Only
    /// meaningful on a live host: in an image, the includes would resolve against the build machine.
    pub fn visudo_check_all(&self) -> Result<bool, HostError> {
        if !self.is_live() {
            return Ok(false);
        }
        let Some(visudo) = self.program("visudo") else {
            return Ok(false);
        };
        run_visudo(Command::new(&visudo).arg("-c").arg("-q"))?;
        Ok(true)
    }
}

fn run_visudo(command: &mut Command) -> Result<(), HostError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| HostError::io("run", &shown, e))?;
    if output.status.success() {
        return Ok(());
    }
    let mut reason = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if reason.is_empty() {
        reason = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(HostError::Refused(format!(
        "visudo rejected the sudoers configuration ({shown}): {reason}"
    )))
}
