//! The systemd generator (`flatcar-harden-generator`, a link to the agent): at every boot, before
//! any unit starts, the on-disk policy's sshd.socket mask and docker.socket drop-in are written to
//! the generator's early directory, so a new host never listens on SSH nor has a docker socket of
//! group docker, not even for the seconds before flatcar-harden.service runs (docs/design.md).
//!
//! A generator must never fail the boot: any error (a bad policy, a directory that cannot be
//! written) is logged to the kernel log and nothing is emitted; the exit status is always 0. The
//! boot-time apply then reports the same error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{docker_socket, sshd_socket};
use crate::host::fs::{FileSpec, Owner, RootFs};
use crate::host::{Host, HostError};
use crate::policy::{self, DockerSocketState, Policy, SshdSocketState};

/// The name systemd runs the agent by, from a link in a generator directory.
pub const NAME: &str = "flatcar-harden-generator";
/// Where systemd tells a generator to write when it is run without arguments (`man
/// systemd.generator`).
const DEFAULT_EARLY: &str = "/run/systemd/generator.early";

/// What the policy asks of the boot before any unit starts: files in the early directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emitted {
    /// `EARLY/NAME -> target`.
    Link { name: PathBuf, target: PathBuf },
    /// `EARLY/NAME` with this content.
    File { name: PathBuf, content: String },
}

/// The generator's output for `policy`: pure, the same decisions the controls make. A control
/// in `held` (a run reverted at its confirmation deadline) is left alone, as the boot's apply
/// leaves it.
pub fn emitted(policy: &Policy, held: &[&str]) -> Vec<Emitted> {
    let mut out = Vec::new();
    let wanted = |id: &str| !held.contains(&id);
    if policy.sshd_socket.state == SshdSocketState::Masked && wanted("sshd-socket") {
        out.push(Emitted::Link {
            name: PathBuf::from(sshd_socket::UNIT),
            target: PathBuf::from(sshd_socket::DEV_NULL),
        });
    }
    if policy.docker_socket.state == DockerSocketState::RootOnly && wanted("docker-socket") {
        out.push(Emitted::File {
            name: Path::new(&format!("{}.d", docker_socket::UNIT)).join(docker_socket::DROPIN_NAME),
            content: docker_socket::DROPIN_CONTENT.to_owned(),
        });
    }
    out
}

/// Reads the policy under `root` with the agent's own loader and writes what it asks into
/// `early`; returns what was written, for the log.
pub fn generate(root: &Path, early: &Path) -> Result<Vec<String>, String> {
    let host = Host::open(root).map_err(|e| e.to_string())?;
    let loaded = policy::load(&host.fs, None).map_err(|e| e.to_string())?;
    let held = crate::journal::confirm::held_at_boot(&host).map_err(|e| e.to_string())?;
    let out = RootFs::open(early).map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    for item in emitted(&loaded.policy, &held) {
        let result: Result<PathBuf, HostError> = match &item {
            Emitted::Link { name, target } => {
                let path = Path::new("/").join(name);
                out.symlink_atomic(&path, target, 0o755).map(|()| path)
            }
            Emitted::File { name, content } => {
                let path = Path::new("/").join(name);
                let spec = FileSpec {
                    content: content.clone().into_bytes(),
                    mode: 0o644,
                    owner: Owner { uid: 0, gid: 0 },
                    parent_mode: 0o755,
                };
                out.write_atomic(&path, &spec, &|_| Ok(())).map(|()| path)
            }
        };
        let path = result.map_err(|e| e.to_string())?;
        written.push(
            early
                .join(path.strip_prefix("/").unwrap_or(&path))
                .display()
                .to_string(),
        );
    }
    Ok(written)
}

/// `flatcar-harden-generator [NORMAL EARLY LATE]`, as systemd runs it. Always succeeds.
pub fn main(args: &[OsString]) -> std::process::ExitCode {
    let early = args
        .get(2)
        .map_or_else(|| PathBuf::from(DEFAULT_EARLY), PathBuf::from);
    // The release build aborts on panic (nothing to unwind into): the hook logs it and exits 0
    // before the abort, so even a bug does not count as a failed generator.
    std::panic::set_hook(Box::new(|info| {
        crate::host::kmsg(&format!("<3>{NAME}: nothing generated: {info}"));
        std::process::exit(0);
    }));
    let result = generate(Path::new("/"), &early);
    let message = match result {
        Ok(written) if written.is_empty() => None,
        Ok(written) => Some(format!("<6>{NAME}: wrote {}", written.join(", "))),
        Err(error) => Some(format!(
            "<3>{NAME}: policy not applied before the units start, nothing generated: {error}"
        )),
    };
    if let Some(message) = message {
        crate::host::kmsg(&message);
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests;
