//! Running a host program (visudo, sudo, modprobe) with a deadline: a tool that hangs must not
//! hold the run lock forever.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::HostError;

/// Runs `command` with no standard input, collecting its output; kills it after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Result<Output, HostError> {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::io("run", &shown, e))?;
    let pid = Pid::from_raw(child.id() as i32);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let finished = match receiver.recv_timeout(timeout) {
        Ok(finished) => finished,
        Err(_) => {
            // Still running: kill it, then collect what the waiting thread gets back.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = receiver.recv();
            return Err(HostError::Refused(format!(
                "{shown} did not finish within {}s and was killed",
                timeout.as_secs()
            )));
        }
    };
    finished.map_err(|e| HostError::io("run", &shown, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_hangs_is_killed_at_the_deadline() {
        let error =
            run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap_err();
        assert!(error.to_string().contains("did not finish"), "{error}");
    }

    #[test]
    fn output_and_status_come_back() {
        let output = run_bounded(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }
}
