//! Who is running the agent, and from where: the lockout guard needs to know whether the operator
//! came in over SSH, because masking sshd or taking core's sudo away would cut that very session.

use std::fs;

#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Why the run is believed to come over SSH (`None`: it does not).
    pub over_ssh: Option<String>,
    /// The user who ran `sudo flatcar-harden …`, if any.
    pub sudo_user: Option<String>,
}

impl Session {
    pub fn detect() -> Session {
        Session {
            over_ssh: detect_ssh(),
            sudo_user: std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()),
        }
    }

    /// The user whose access is at stake: the one behind sudo, or the one running the agent.
    pub fn operator(&self) -> Option<String> {
        self.sudo_user
            .clone()
            .or_else(|| user_name(nix::unistd::getuid().as_raw()))
    }
}

/// The name of `uid` from `/etc/passwd`, then Flatcar's `/usr/share/baselayout/passwd` (what NSS's
/// `files usrfiles` would answer), read directly: the shipped binary is statically linked, and a
/// static glibc cannot load the host's NSS modules reliably, so the agent makes no NSS lookup.
fn user_name(uid: u32) -> Option<String> {
    ["/etc/passwd", "/usr/share/baselayout/passwd"]
        .iter()
        .find_map(|file| {
            fs::read_to_string(file).ok()?.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 3 && fields[2].parse() == Ok(uid)).then(|| fields[0].to_owned())
            })
        })
}

/// `SSH_CONNECTION` is the obvious sign, but `sudo` resets the environment, so also walk up the
/// process tree looking for sshd (`sshd`, or `sshd-session` on OpenSSH ≥ 9.8) and look at the
/// cgroups of this process and its ancestors for a per-connection `sshd@….service` unit.
fn detect_ssh() -> Option<String> {
    if let Ok(conn) = std::env::var("SSH_CONNECTION") {
        if !conn.is_empty() {
            return Some(format!("SSH_CONNECTION={conn}"));
        }
    }
    let mut pid = std::process::id();
    for _ in 0..64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may itself contain spaces or parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = &stat[open + 1..close];
        if comm == "sshd" || comm == "sshd-session" {
            return Some(format!("process {pid} ({comm}) is an ancestor"));
        }
        if let Ok(cgroup) = fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            if let Some(unit) = cgroup
                .split(['/', '\n'])
                .find(|part| part.starts_with("sshd@") && part.ends_with(".service"))
            {
                return Some(format!("process {pid} runs in {unit}"));
            }
        }
        let ppid: u32 = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
        if ppid <= 1 {
            return None;
        }
        pid = ppid;
    }
    None
}
