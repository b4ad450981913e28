//! SELinux enforcing (or permissive), now and at every boot.
//!
//! Flatcar boots SELinux permissive; the guide points to switching it to enforcing. Two halves:
//!
//! - **Runtime**: `/sys/fs/selinux/enforce` takes `1` or `0` (what `setenforce` writes); a
//!   reboot resets it. No `/sys/fs/selinux` at all means SELinux is not active in this kernel:
//!   nothing can be switched now, and the control waits for a boot that has it.
//! - **Persistent**: `SELINUX=` in `/etc/selinux/config`. On older images that file is a link
//!   into read-only `/usr`; Flatcar's docs say to replace the link with a regular copy of its
//!   target, then edit. So: `lstat` first; a link is replaced (atomically, by rename) with a file
//!   holding its target's content with the one line changed; a regular file is edited in place
//!   atomically; every other line is kept.
//!
//! Enforcing only where it will not break: in permissive mode the kernel logs every access that
//! enforcing would refuse (an AVC record, `permissive=1`). Before switching a permissive system
//! to enforcing, this boot's denials are read (denials.rs); if there are any, neither half is
//! switched and the control fails naming them, unless the policy says `allow_denials = true`.
//!
//! `enforcing=` and `selinux=0` on the kernel command line override the config file at every
//! boot. The agent does not edit kernel arguments for SELinux; such an override is reported as
//! the reason the persistent half cannot take effect (`failed`, with the fix).

mod denials;

use std::path::Path;

use super::{envfile, Action, Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileKind, FileSpec, Metadata, Owner};
use crate::host::kernel::{Cmdline, Kernel, CMDLINE};
use crate::host::Host;
use crate::policy::{self, SelinuxState};

const SELINUXFS: &str = "/sys/fs/selinux";
const ENFORCE: &str = "/sys/fs/selinux/enforce";
const CONFIG: &str = "/etc/selinux/config";

pub struct Selinux {
    policy: policy::Selinux,
}

impl Selinux {
    pub fn new(policy: policy::Selinux) -> Self {
        Selinux { policy }
    }

    /// The config file's word and the `enforce` value for the policy's mode.
    fn wanted(&self) -> (&'static str, &'static str) {
        match self.policy.state {
            SelinuxState::Permissive => ("permissive", "0"),
            _ => ("enforcing", "1"),
        }
    }
}

pub struct State {
    /// The config path itself, not followed: a link or a regular file.
    file: FileState,
    /// Where a link points, as written in it.
    link_target: Option<String>,
    /// Who owns a file the agent creates in place of a link.
    owner: Owner,
    /// Mode and owner of what the path names after following a link.
    target: Option<Metadata>,
    /// `None` for an image: no running kernel to look at.
    runtime: Option<Runtime>,
    /// This boot's denials made in permissive mode, or why they could not be read; `None` when
    /// not asked (not switching a permissive kernel to enforcing, or `allow_denials`).
    denials: Option<Result<Vec<denials::Denial>, String>>,
}

struct Runtime {
    /// `/sys/fs/selinux` exists. Without `enforce` in it, it is only the mount point (selinuxfs
    /// not mounted, as in some containers).
    selinuxfs: bool,
    /// `None`: SELinux is not active in this kernel (or not visible here).
    enforce: Option<String>,
    cmdline: Cmdline,
}

impl Control for Selinux {
    type State = State;

    const ID: &'static str = "selinux";
    const TITLE: &'static str = "SELinux mode";
    type Section = policy::Selinux;

    fn section(&self) -> &policy::Selinux {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let path = Path::new(CONFIG);
        let file = FileState::observe(host, path)?;
        let link_target = match file.meta {
            Some(meta) if meta.kind == FileKind::Symlink => host
                .fs
                .read_link(path)?
                .map(|target| target.display().to_string()),
            _ => None,
        };
        let runtime = host.kernel().map(observe_runtime).transpose()?;
        // Only a permissive kernel being switched to enforcing has denials that matter: they are
        // what enforcing would refuse. Read nothing otherwise (a compliant run starts no program).
        let switching = self.policy.state == SelinuxState::Enforcing
            && !self.policy.allow_denials
            && runtime.as_ref().and_then(|r| r.enforce.as_deref()) == Some("0");
        let denials = switching.then(|| {
            crate::host::audit::avc_lines_this_boot(host)
                .map(|found| denials::distinct(&found.lines))
                .map_err(|e| e.to_string())
        });
        Ok(State {
            file,
            link_target,
            owner: host.file_owner(),
            target: host.fs.stat(path)?,
            runtime,
            denials,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let (word, bit) = self.wanted();
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();
        // Denials stop both halves: the next boot would refuse the same accesses.
        if let Some(refusal) = refusal(state.denials.as_ref()) {
            plan.summary = refusal.0;
            plan.problems.push(refusal.1);
            return Ok(plan);
        }

        // Persistent half first: it is what the next boot reads.
        // The content, read through a link (inside the root).
        match state.file.content.as_ref().or(state.file.linked.as_ref()) {
            None => plan.problems.push(match &state.link_target {
                Some(target) => format!(
                    "{CONFIG} is a link to {target}, which does not exist: the SELinux policy \
                     type (SELINUXTYPE) is unknown, so nothing is written; restore the file"
                ),
                None => format!(
                    "{CONFIG} does not exist: the SELinux policy type (SELINUXTYPE) is unknown, \
                     so nothing is written; restore the file"
                ),
            }),
            Some(bytes) => {
                // libselinux reads the first SELINUX= line.
                let current = envfile::parse(&String::from_utf8_lossy(bytes))
                    .into_iter()
                    .find(|a| a.key == "SELINUX");
                match &current {
                    Some(found) if found.value.eq_ignore_ascii_case(word) => {
                        summary.push(format!("SELINUX={} in {CONFIG}", found.value))
                    }
                    _ => {
                        let now = current.as_ref().map_or("no SELINUX= line".to_owned(), |a| {
                            format!("SELINUX={}", a.value)
                        });
                        summary.push(match &state.link_target {
                            Some(target) => format!(
                                "{now} in {CONFIG} (a link to {target}): replace the link with \
                                 a regular file saying SELINUX={word}"
                            ),
                            None => format!("{now} in {CONFIG}: set SELINUX={word}"),
                        });
                        let regular = state.file.meta.is_some_and(|m| m.kind == FileKind::Regular);
                        let (mode, owner) = match (regular, state.target) {
                            // A regular file keeps its mode and owner; a link's replacement is a
                            // new file of the agent's, with the mode its target had.
                            (true, Some(m)) => (
                                m.mode,
                                Owner {
                                    uid: m.uid,
                                    gid: m.gid,
                                },
                            ),
                            (_, target) => (target.map_or(0o644, |m| m.mode & 0o777), state.owner),
                        };
                        let spec = FileSpec {
                            content: set_mode_line(bytes, current.map(|a| a.line), word),
                            mode,
                            owner,
                            parent_mode: 0o755,
                        };
                        plan.actions.extend(
                            FileWrite::plan(&state.file, spec, Validation::None)
                                .map(Action::WriteFile),
                        );
                    }
                }
            }
        }

        // Runtime half, and what on the kernel command line overrides the file.
        match &state.runtime {
            None => plan.pending.push(format!(
                "takes effect at boot: there is no running kernel under this root; SELinux \
                 starts {word} from {CONFIG}"
            )),
            Some(runtime) => {
                if runtime.cmdline.value("selinux") == Some("0") {
                    plan.problems.push(format!(
                        "the kernel command line ({CMDLINE}) has selinux=0: SELinux is off at \
                         every boot whatever {CONFIG} says; remove selinux=0 from the kernel \
                         arguments (the OEM grub.cfg)"
                    ));
                }
                if let Some(value) = runtime.cmdline.value("enforcing").filter(|v| *v != bit) {
                    plan.problems.push(format!(
                        "the kernel command line ({CMDLINE}) has enforcing={value}, which \
                         overrides SELINUX={word} in {CONFIG} at every boot; remove it from the \
                         kernel arguments (the OEM grub.cfg)"
                    ));
                }
                match runtime.enforce.as_deref() {
                    None => {
                        let why = if runtime.selinuxfs {
                            format!("selinuxfs is not mounted at {SELINUXFS}")
                        } else {
                            format!("no {SELINUXFS}")
                        };
                        summary.insert(0, format!("SELinux is not active in this kernel ({why})"));
                        plan.pending.push(format!(
                            "SELinux is not active in the running kernel ({why}): nothing to \
                             switch now; {CONFIG} takes effect when the kernel boots with SELinux"
                        ));
                    }
                    Some(now) if now == bit => {
                        summary.insert(0, format!("{word} now ({ENFORCE}: {now})"))
                    }
                    Some(now) => {
                        let mode = if now == "1" {
                            "enforcing"
                        } else {
                            "permissive"
                        };
                        summary.insert(
                            0,
                            format!("{mode} now ({ENFORCE}: {now}): switch to {word}"),
                        );
                        plan.actions.push(Action::WriteKernelSetting {
                            path: ENFORCE.to_owned(),
                            value: bit.to_owned(),
                            before: now.to_owned(),
                        });
                    }
                }
            }
        }
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

/// How many denials a report names; the rest are counted.
const SHOWN: usize = 3;

/// Summary and problem when this boot's denials (or not knowing them) stop the switch.
fn refusal(denials: Option<&Result<Vec<denials::Denial>, String>>) -> Option<(String, String)> {
    let fix = "fix the policy for these accesses (audit2allow shows the rules they need) or the \
               programs that make them, or set selinux.allow_denials = true to switch anyway";
    match denials? {
        Ok(found) if found.is_empty() => None,
        Ok(found) => {
            let mut named: Vec<String> = found.iter().take(SHOWN).map(|d| d.describe()).collect();
            if found.len() > SHOWN {
                named.push(format!("and {} more", found.len() - SHOWN));
            }
            Some((
                format!(
                    "permissive now, and this boot logged {} distinct AVC denial(s) that \
                     enforcing would refuse: not switched to enforcing",
                    found.len()
                ),
                format!(
                    "not switched to enforcing, now or in {CONFIG}: this boot logged AVC \
                     denials in permissive mode ({}), which enforcing turns into failures; {fix}. \
                     `journalctl -b _TRANSPORT=audit _AUDIT_TYPE=1400` (or ausearch -m AVC -ts \
                     boot) lists them",
                    named.join("; ")
                ),
            ))
        }
        Err(why) => Some((
            "permissive now; this boot's AVC denials cannot be read: not switched to enforcing"
                .to_owned(),
            format!(
                "not switched to enforcing, now or in {CONFIG}: this boot's AVC denials cannot \
                 be read ({why}), so what enforcing would break is unknown; set \
                 selinux.allow_denials = true to switch without that check"
            ),
        )),
    }
}

fn observe_runtime(kernel: &Kernel) -> Result<Runtime, ControlError> {
    Ok(Runtime {
        selinuxfs: kernel.has_dir(SELINUXFS)?,
        enforce: kernel.read(ENFORCE)?,
        cmdline: kernel.cmdline()?,
    })
}

/// The config with its `SELINUX=` line (1-based `line`, the first one: libselinux reads the
/// first) saying `word`, or such a line appended; every other byte kept.
/// The config's bytes with line `line` (1-based) replaced by `SELINUX=word`, or that line
/// appended; every other byte is kept (a comment in Latin-1 stays as it was).
fn set_mode_line(bytes: &[u8], line: Option<usize>, word: &str) -> Vec<u8> {
    let new_line = format!("SELINUX={word}");
    let Some(line) = line else {
        let mut out = bytes.to_vec();
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(new_line.as_bytes());
        out.push(b'\n');
        return out;
    };
    bytes
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .flat_map(|(index, old)| {
            if index + 1 == line {
                let ending: &[u8] = if old.ends_with(b"\n") { b"\n" } else { b"" };
                [new_line.as_bytes(), ending].concat()
            } else {
                old.to_vec()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
