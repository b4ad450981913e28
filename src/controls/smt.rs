//! SMT (simultaneous multi-threading) off, now and at every boot.
//!
//! The guide: some Intel vulnerabilities "cannot be fully mitigated in software without disabling
//! Simultaneous Multi-Threading". Two halves:
//!
//! - **Runtime**: `/sys/devices/system/cpu/smt/control` takes `off`, which takes the sibling
//!   threads offline now (`smt/active` then reads 0). It does not survive a reboot. `forceoff`
//!   (booted with `nosmt=force`) and `notsupported` (no SMT in this CPU) already mean no SMT;
//!   `notimplemented` (or no `smt/` at all) means the kernel cannot control it: not applicable.
//! - **Persistent**: a kernel argument, which Flatcar takes from the OEM `grub.cfg` as one
//!   unconditional line `set linux_append="$linux_append nosmt"` (the form Ignition's
//!   `kernelArguments` writes and parses too). It takes effect at the next boot; until
//!   `/proc/cmdline` has it, the control is `pending-reboot`.
//!
//! `auto` is `mitigations=auto,nosmt`: the kernel turns SMT off at boot only where a known
//! vulnerability needs it. At runtime the agent makes the same decision from the kernel's own
//! verdicts, `/sys/devices/system/cpu/vulnerabilities/*`: a file saying "SMT vulnerable" turns
//! SMT off now, and the report names it; none leaves SMT on, and the report says so.

use super::grub_cfg::{add_argument, grub_line, linux_append, set_lines, GrubCfg};
use super::{Action, Control, ControlError, Disposition, Plan};
use crate::host::kernel::{Cmdline, Kernel, CMDLINE};
use crate::host::Host;
use crate::policy::{self, SmtState};

const CONTROL: &str = "/sys/devices/system/cpu/smt/control";
const ACTIVE: &str = "/sys/devices/system/cpu/smt/active";
const VULNERABILITIES: &str = "/sys/devices/system/cpu/vulnerabilities";
/// What the kernel writes into a vulnerability's file while SMT leaves the host exposed to it.
const SMT_VULNERABLE: &str = "SMT vulnerable";

pub struct Smt {
    policy: policy::Smt,
}

impl Smt {
    pub fn new(policy: policy::Smt) -> Self {
        Smt { policy }
    }
}

pub struct State {
    grub: GrubCfg,
    /// `None` for an image: no running kernel to look at.
    runtime: Option<Runtime>,
}

struct Runtime {
    /// `smt/control`; `None` when the kernel has no `smt/` directory.
    control: Option<String>,
    active: Option<String>,
    /// Vulnerabilities whose file says "SMT vulnerable": name and text.
    vulnerable: Vec<(String, String)>,
    /// The kernel has a `vulnerabilities/` directory at all.
    vulnerabilities_listed: bool,
    cmdline: Cmdline,
}

impl Control for Smt {
    type State = State;

    const ID: &'static str = "smt";
    const TITLE: &'static str = "SMT disabled";
    type Section = policy::Smt;

    fn section(&self) -> &policy::Smt {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        Ok(State {
            grub: GrubCfg::observe(host, &self.policy.grub_cfg.0)?,
            runtime: host.kernel().map(observe_runtime).transpose()?,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let mode = self.policy.state;
        let argument = argument(mode);
        let path = &self.policy.grub_cfg.0;
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();
        // Written after grub.cfg: if the kernel refuses it, the next boot still has the argument.
        let mut switch_off = None;

        // Runtime half first: a kernel that cannot control SMT makes the whole control moot.
        match &state.runtime {
            None => plan.pending.push(match mode {
                SmtState::Auto => format!(
                    "takes effect at boot: there is no running kernel under this root; at boot \
                     the kernel turns SMT off where a vulnerability needs it (`{argument}`)"
                ),
                _ => format!(
                    "takes effect at boot: there is no running kernel under this root; SMT goes \
                     off when the image boots with `{argument}`"
                ),
            }),
            Some(runtime) => {
                let control = runtime.control.as_deref().unwrap_or("notimplemented");
                let active = runtime.active.as_deref().unwrap_or("?");
                match control {
                    "notimplemented" => {
                        return Ok(Plan::with(
                            Disposition::NotApplicable,
                            format!(
                                "this kernel cannot control SMT ({CONTROL}: {})",
                                runtime.control.as_deref().unwrap_or("missing")
                            ),
                        ))
                    }
                    "forceoff" => summary.push(
                        "SMT is forced off (control forceoff: booted with nosmt=force; it \
                         cannot be turned on)"
                            .to_owned(),
                    ),
                    "notsupported" => summary
                        .push("this CPU has no SMT to turn off (control notsupported)".to_owned()),
                    "off" => summary.push(format!("SMT is off (control off, active {active})")),
                    "on" => {
                        let off_now = match mode {
                            SmtState::Auto if runtime.vulnerable.is_empty() => {
                                summary.push(if runtime.vulnerabilities_listed {
                                    format!(
                                        "SMT stays on (control on, active {active}): no file in \
                                         {VULNERABILITIES} says \"{SMT_VULNERABLE}\""
                                    )
                                } else {
                                    format!(
                                        "SMT stays on (control on, active {active}): this \
                                         kernel lists no vulnerabilities ({VULNERABILITIES} \
                                         is missing)"
                                    )
                                });
                                false
                            }
                            SmtState::Auto => {
                                let names: Vec<String> = runtime
                                    .vulnerable
                                    .iter()
                                    .map(|(name, text)| format!("{name} (\"{text}\")"))
                                    .collect();
                                summary.push(format!(
                                    "SMT is on (control on, active {active}) and {VULNERABILITIES} \
                                     says it must go: {}; turn it off now",
                                    names.join(", ")
                                ));
                                true
                            }
                            _ => {
                                summary.push(format!(
                                    "SMT is on (control on, active {active}): turn it off now"
                                ));
                                true
                            }
                        };
                        if off_now {
                            switch_off = Some(Action::WriteKernelSetting {
                                path: CONTROL.to_owned(),
                                value: "off".to_owned(),
                                before: control.to_owned(),
                            });
                        }
                    }
                    other => plan.problems.push(format!(
                        "{CONTROL} reads `{other}`, which this agent does not know; nothing \
                         written"
                    )),
                }
                if !takes_effect(mode, &runtime.cmdline.0) {
                    plan.pending.push(format!(
                        "the running kernel was booted without `{argument}` ({CMDLINE}); {} \
                         brings it at the next boot",
                        path.display()
                    ));
                }
            }
        }

        // Persistent half: the kernel argument in the OEM grub.cfg.
        let grub = match state.grub.text() {
            Ok(text) => text,
            Err(problem) => {
                plan.problems.push(problem);
                plan.summary = summary.join("; ");
                return Ok(plan);
            }
        };
        let content = if takes_effect(mode, &linux_append(grub)) {
            summary.push(format!("`{argument}` in {}", path.display()));
            grub.to_owned()
        } else {
            let superseded: &[&str] = if mode == SmtState::Auto {
                &["nosmt"]
            } else {
                &[]
            };
            let edited = add_argument(grub, argument, superseded);
            match state.grub.write(&edited, "smt.grub_cfg") {
                Ok(write) => {
                    summary.push(format!(
                        "add `{}` to {}",
                        grub_line(argument),
                        path.display()
                    ));
                    plan.actions.extend(write);
                    edited
                }
                Err(problem) => {
                    plan.problems.push(problem);
                    grub.to_owned()
                }
            }
        };
        if mode == SmtState::Auto {
            // A `nosmt` the agent did not write would keep SMT off everywhere: not what `auto` asks.
            for (line, words) in set_lines(&content) {
                if words.iter().any(|w| w == "nosmt" || w == "nosmt=force") {
                    plan.problems.push(format!(
                        "{}:{line} passes `nosmt`, which turns SMT off on every CPU, so \
                         smt.state = \"auto\" cannot take effect; remove it there, or use \
                         smt.state = \"off\"",
                        path.display()
                    ));
                }
            }
        }
        plan.actions.extend(switch_off);
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

fn observe_runtime(kernel: &Kernel) -> Result<Runtime, ControlError> {
    let mut vulnerable = Vec::new();
    for name in kernel.list(VULNERABILITIES)? {
        if let Some(text) = kernel.read(&format!("{VULNERABILITIES}/{name}"))? {
            if text.contains(SMT_VULNERABLE) {
                vulnerable.push((name, text));
            }
        }
    }
    Ok(Runtime {
        control: kernel.read(CONTROL)?,
        active: kernel.read(ACTIVE)?,
        vulnerable,
        vulnerabilities_listed: kernel.has_dir(VULNERABILITIES)?,
        cmdline: kernel.cmdline()?,
    })
}

/// The kernel argument a mode asks for.
fn argument(mode: SmtState) -> &'static str {
    match mode {
        SmtState::Auto => "mitigations=auto,nosmt",
        _ => "nosmt",
    }
}

/// Whether kernel arguments (in order) give what the policy asks for. `nosmt=force` is `nosmt`
/// that cannot be undone at runtime; for `mitigations=` the last one counts, as in the kernel.
fn takes_effect(mode: SmtState, args: &[String]) -> bool {
    match mode {
        SmtState::Auto => {
            args.iter()
                .rev()
                .find_map(|a| a.strip_prefix("mitigations="))
                == Some("auto,nosmt")
        }
        _ => args.iter().any(|a| a == "nosmt" || a == "nosmt=force"),
    }
}

#[cfg(test)]
mod tests;
