//! Running a host program (visudo, sudo, modprobe) with a deadline: a tool that hangs must not
//! hold the run lock forever.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::HostError;

/// What a program did: its status and output, and how it was called (for messages).
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub shown: String,
}

impl Ran {
    /// What the program said about its failure (stderr, else stdout), never empty.
    pub fn reason(&self) -> String {
        let mut reason = String::from_utf8_lossy(&self.stderr).trim().to_owned();
        if reason.is_empty() {
            reason = String::from_utf8_lossy(&self.stdout).trim().to_owned();
        }
        if reason.is_empty() {
            reason = format!("{} exited with {}", self.shown, self.status);
        }
        reason
    }
}

/// Runs `command` with `input` on stdin; killed when it runs longer than `limit`.
pub fn run_bounded(
    command: &mut Command,
    input: Option<&[u8]>,
    limit: Duration,
) -> Result<Ran, HostError> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::io("run", &shown, e))?;
    let feed = child.stdin.take().map(|mut stdin| {
        let input = input.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        })
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| HostError::io("wait for", &shown, e))?
        {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HostError::Refused(format!(
                "{shown} did not finish within {} s and was killed",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(feed) = feed {
        let _ = feed.join();
    }
    Ok(Ran {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        shown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_hangs_is_killed_at_the_deadline() {
        let error = run_bounded(
            Command::new("sleep").arg("30"),
            None,
            Duration::from_millis(200),
        )
        .err()
        .expect("sleep 30 cannot finish in 200 ms");
        assert!(
            error.to_string().contains("did not finish within"),
            "{error}"
        );
    }

    #[test]
    fn input_output_and_status_come_back() {
        let ran = run_bounded(
            Command::new("sh").args(["-c", "cat; echo err >&2; exit 3"]),
            Some(b"in\n"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(ran.status.code(), Some(3));
        assert_eq!(ran.stdout, b"in\n");
        assert_eq!(ran.reason(), "err");
    }
}
