//! Kernel lockdown at the policy's level, now and at every boot.
//!
//! - **Persistent**: `lockdown=LEVEL` on the kernel command line, as one unconditional
//!   `set linux_append="$linux_append lockdown=LEVEL"` in the OEM grub.cfg (the editor `smt`
//!   uses); a different `lockdown=` the file passes is taken out. Until `/proc/cmdline` has it,
//!   the control is `pending-reboot`.
//! - **Runtime**: `/sys/kernel/security/lockdown` reads like `none [integrity] confidentiality`
//!   (the running level in brackets) and takes a level name, but only a higher one: the kernel
//!   never lowers lockdown while it runs. So a running level below the policy's is raised now,
//!   and one above it is drift the report names (`failed`), never a write. No such file: the
//!   running kernel has no lockdown LSM, and `lockdown=` would do nothing at boot either.
//!
//! The raise is journaled as one way: `revert` puts grub.cfg back and says the running level
//! stays until the next boot.

use super::grub_cfg::{add_argument, grub_line, linux_append, mentions, remove_argument, GrubCfg};
use super::{Action, Control, ControlError, Plan};
use crate::host::kernel::{Cmdline, CMDLINE};
use crate::host::Host;
use crate::policy::{self, KernelLockdownState};

const LOCKDOWN: &str = "/sys/kernel/security/lockdown";
/// The kernel's levels, lowest first.
const LEVELS: [&str; 3] = ["none", "integrity", "confidentiality"];

/// What each level stops, for the report and docs/policy.md (the kernel's `lockdown_reasons`).
const INTEGRITY_BREAKS: &str = "lockdown `integrity` refuses what could change the running \
    kernel: loading unsigned kernel modules (Flatcar signs its own; out-of-tree ones such as \
    self-built GPU or ZFS drivers are refused) and unsafe module parameters, eBPF writing user \
    memory (bpf_probe_write_user), kexec of unsigned kernels, hibernation, /dev/mem, /dev/kmem \
    and /dev/port, raw MSR and I/O port access, direct PCI access, ACPI table overrides, most \
    of debugfs";
const CONFIDENTIALITY_BREAKS: &str = "`confidentiality` also refuses reading kernel memory: \
    eBPF tracing that reads it (bpftrace, bpf_probe_read_kernel, eBPF security and \
    observability agents), kprobes, unsafe perf use, tracefs and /proc/kcore";

pub struct KernelLockdown {
    policy: policy::KernelLockdown,
}

impl KernelLockdown {
    pub fn new(policy: policy::KernelLockdown) -> Self {
        KernelLockdown { policy }
    }
}

pub struct State {
    grub: GrubCfg,
    /// `None` for an image: no running kernel to look at.
    runtime: Option<Runtime>,
}

struct Runtime {
    /// `/sys/kernel/security/lockdown`; `None` without the lockdown LSM.
    lockdown: Option<String>,
    cmdline: Cmdline,
}

impl Control for KernelLockdown {
    type State = State;

    const ID: &'static str = "kernel-lockdown";
    const TITLE: &'static str = "Kernel lockdown";
    type Section = policy::KernelLockdown;

    fn section(&self) -> &policy::KernelLockdown {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let runtime = match host.kernel() {
            None => None,
            Some(kernel) => Some(Runtime {
                lockdown: kernel.read(LOCKDOWN)?,
                cmdline: kernel.cmdline()?,
            }),
        };
        Ok(State {
            grub: GrubCfg::observe(host, &self.policy.grub_cfg.0)?,
            runtime,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let level = match self.policy.state {
            KernelLockdownState::Confidentiality => "confidentiality",
            _ => "integrity",
        };
        let argument = format!("lockdown={level}");
        let path = state.grub.path();
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();
        // Written after grub.cfg: if the kernel refuses it, the next boot still has the argument.
        let mut raise = None;
        plan.notes.push(match level {
            "integrity" => format!("{INTEGRITY_BREAKS}."),
            _ => format!("{INTEGRITY_BREAKS}; {CONFIDENTIALITY_BREAKS}."),
        });

        match &state.runtime {
            None => plan.pending.push(format!(
                "takes effect at boot: there is no running kernel under this root; the image \
                 boots locked down with `{argument}`"
            )),
            Some(runtime) => {
                match runtime.lockdown.as_deref() {
                    None => plan.problems.push(format!(
                        "the running kernel has no lockdown LSM ({LOCKDOWN} is missing): \
                         `{argument}` only works on a kernel built with \
                         CONFIG_SECURITY_LOCKDOWN_LSM that has `lockdown` in its LSM list \
                         (CONFIG_LSM, or an `lsm=` kernel argument that names it); {} gets the \
                         argument anyway",
                        path.display()
                    )),
                    Some(text) => {
                        match running(text) {
                            None => plan.problems.push(format!(
                            "{LOCKDOWN} reads `{text}`, which this agent does not know; nothing \
                             written there"
                        )),
                            Some(current) if rank(current) == rank(level) => {
                                summary.push(format!("the kernel runs locked down at `{level}`"))
                            }
                            Some(current) if rank(current) < rank(level) => {
                                summary.push(format!(
                                "the kernel runs at lockdown `{current}`: raise it to `{level}` \
                                 now"
                            ));
                                raise = Some(Action::RaiseKernelSetting {
                                    path: LOCKDOWN.to_owned(),
                                    value: level.to_owned(),
                                    before: current.to_owned(),
                                });
                            }
                            Some(current) => {
                                plan.problems.push(format!(
                            "the kernel runs locked down at `{current}`, above the policy's \
                             `{level}`, and lockdown cannot be lowered while it runs ({}); the \
                             next boot gets `{argument}`; or set kernel-lockdown.state = \
                             \"{current}\"",
                            match runtime.cmdline.0.iter().find(|a| a.starts_with("lockdown=")) {
                                Some(arg) => format!("booted with `{arg}`"),
                                None => "set by the kernel itself, e.g. for Secure Boot".to_owned(),
                            }
                        ))
                            }
                        }
                    }
                }
                if !runtime.cmdline.0.contains(&argument) {
                    plan.pending.push(format!(
                        "the running kernel was booted without `{argument}` ({CMDLINE}): a raise \
                         now lasts until the next boot, and {} brings it at every boot",
                        path.display()
                    ));
                }
            }
        }

        // Persistent half: this lockdown= and no other in the OEM grub.cfg.
        match state.grub.text() {
            Err(problem) => plan.problems.push(problem),
            Ok(grub) => persistent(&state.grub, grub, &argument, &mut plan, &mut summary),
        }
        plan.actions.extend(raise);
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

/// Plans grub.cfg (its text `grub`): this `lockdown=` and no other.
fn persistent(
    grub_cfg: &GrubCfg,
    grub: &str,
    argument: &str,
    plan: &mut Plan,
    summary: &mut Vec<String>,
) {
    let path = grub_cfg.path();
    let other = |word: &str| word.starts_with("lockdown=") && word != argument;
    let mut edited = remove_argument(grub, other);
    if !linux_append(&edited).iter().any(|a| a == argument) {
        edited = add_argument(&edited, argument, &[]);
    }
    if edited == grub {
        summary.push(format!("`{argument}` in {}", path.display()));
    } else {
        match grub_cfg.write(&edited, "kernel-lockdown.grub_cfg") {
            Ok(write) => {
                summary.push(format!(
                    "add `{}` to {}{}",
                    grub_line(argument),
                    path.display(),
                    if mentions(grub, other).is_empty() {
                        ""
                    } else {
                        ", in place of the other lockdown= it passed"
                    }
                ));
                plan.actions.extend(write);
            }
            Err(problem) => plan.problems.push(problem),
        }
    }
    for line in mentions(&edited, other) {
        plan.problems.push(format!(
            "{}:{line} passes another `lockdown=` in a form this agent does not edit; the \
             kernel keeps the highest level it is given: remove it there",
            path.display()
        ));
    }
}

/// The running level of `none [integrity] confidentiality`: the bracketed name, if the kernel
/// knows it.
fn running(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find_map(|word| word.strip_prefix('[')?.strip_suffix(']'))
        .filter(|level| LEVELS.contains(level))
}

fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

#[cfg(test)]
mod tests;
