//! No console autologin: no `flatcar.autologin` on the kernel command line and no getty drop-in
//! that logs a user in without a password.
//!
//! Flatcar's OEM grub.cfg for QEMU, VMware, Azure, OpenStack and Proxmox VE sets
//! `set linux_append="flatcar.autologin"` ("the hypervisor manages access to the console"), and
//! with it every console logs core in without a password (flatcar/Flatcar#396, #151). Two halves:
//!
//! - **Kernel command line**: the argument (`flatcar.autologin`, `flatcar.autologin=TTY`, the
//!   legacy `coreos.autologin[=TTY]`) is taken out of every `set linux_append=` line of the OEM
//!   grub.cfg with the editor `smt` uses, every other word and line kept. The running kernel
//!   keeps it until the next boot: `pending-reboot` while `/proc/cmdline` has it.
//! - **getty drop-ins**: a `*.conf` in `/etc/systemd/system/*getty*.d/` whose `[Service]`
//!   `ExecStart=` runs agetty with `--autologin`/`-a` (what Butane examples and Ignition configs
//!   write) is removed, journaled first, then systemd reloads. A getty logged in now stays so
//!   until its session ends.

use std::path::Path;

use super::envfile::words;
use super::grub_cfg::{mentions, remove_argument, GrubCfg};
use super::unit_file::settings;
use super::units::ETC_UNITS;
use super::{Action, Control, ControlError, FileState, Plan, UnitAction};
use crate::host::fs::FileKind;
use crate::host::kernel::{Cmdline, CMDLINE};
use crate::host::Host;
use crate::policy;

pub struct ConsoleAutologin {
    policy: policy::ConsoleAutologin,
}

impl ConsoleAutologin {
    pub fn new(policy: policy::ConsoleAutologin) -> Self {
        ConsoleAutologin { policy }
    }
}

pub struct State {
    grub: GrubCfg,
    /// Every `*.conf` in an `/etc/systemd/system/*getty*.d/` directory.
    dropins: Vec<FileState>,
    /// `None` for an image.
    cmdline: Option<Cmdline>,
    /// systemd runs on this root and must re-read its units after a drop-in goes.
    live: bool,
}

impl Control for ConsoleAutologin {
    type State = State;

    const ID: &'static str = "console-autologin";
    const TITLE: &'static str = "No console autologin";
    type Section = policy::ConsoleAutologin;

    fn section(&self) -> &policy::ConsoleAutologin {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let mut dropins = Vec::new();
        for name in host.fs.list_dir(Path::new(ETC_UNITS))? {
            let Some(name) = name
                .to_str()
                .filter(|n| n.contains("getty") && n.ends_with(".d"))
            else {
                continue;
            };
            let dir = Path::new(ETC_UNITS).join(name);
            if !host
                .fs
                .stat(&dir)?
                .is_some_and(|m| m.kind == FileKind::Directory)
            {
                continue;
            }
            for file in host.fs.list_dir(&dir)? {
                // systemd reads only `*.conf` drop-ins.
                if file.to_str().is_some_and(|f| f.ends_with(".conf")) {
                    dropins.push(FileState::observe(host, &dir.join(file))?);
                }
            }
        }
        Ok(State {
            grub: GrubCfg::observe(host, &self.policy.grub_cfg.0)?,
            dropins,
            cmdline: host.kernel().map(|k| k.cmdline()).transpose()?,
            live: host.is_live(),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let path = state.grub.path();
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();

        // The kernel argument in the OEM grub.cfg.
        match state.grub.text() {
            Err(problem) => plan.problems.push(problem),
            Ok(grub) => {
                let edited = remove_argument(grub, is_autologin);
                if edited == grub {
                    summary.push(format!("no autologin argument in {}", path.display()));
                } else {
                    match state.grub.write(&edited, "console-autologin.grub_cfg") {
                        Ok(write) => {
                            let lines: Vec<String> = mentions(grub, is_autologin)
                                .iter()
                                .map(|l| l.to_string())
                                .collect();
                            summary.push(format!(
                                "take the autologin argument out of {}:{}",
                                path.display(),
                                lines.join(",")
                            ));
                            plan.actions.extend(write);
                        }
                        Err(problem) => plan.problems.push(problem),
                    }
                }
                for line in mentions(&edited, is_autologin) {
                    plan.problems.push(format!(
                        "{}:{line} passes console autologin in a form this agent does not edit \
                         (not a `set linux_append=` line of its own): remove it there",
                        path.display()
                    ));
                }
            }
        }

        // getty drop-ins that log in without a password.
        let mut removed = false;
        for dropin in &state.dropins {
            let text = dropin.content.as_ref().or(dropin.linked.as_ref());
            let text = String::from_utf8_lossy(text.map_or(&[][..], Vec::as_slice));
            let Some((line, command)) = autologin_exec(&text) else {
                continue;
            };
            summary.push(format!(
                "remove {} (line {line}: ExecStart={command})",
                dropin.path.display()
            ));
            plan.actions.push(Action::RemoveFile {
                path: dropin.path.clone(),
                before: text.as_bytes().to_vec().into(),
                empty_dirs: Vec::new(),
            });
            removed = true;
        }
        if removed && state.live {
            plan.actions.push(Action::Unit(UnitAction::Reload));
            plan.notes.push(
                "a console logged in now stays logged in until its session ends; the getty \
                 started after that asks for a password"
                    .to_owned(),
            );
        }
        if !removed {
            summary.push(format!(
                "no getty autologin drop-in in {ETC_UNITS}/*getty*.d"
            ));
        }

        // The running kernel keeps its command line until the next boot.
        if let Some(arg) = state
            .cmdline
            .as_ref()
            .and_then(|c| c.0.iter().find(|a| is_autologin(a)))
        {
            plan.pending.push(format!(
                "the running kernel was booted with `{arg}` ({CMDLINE}): the console logs in \
                 without a password until the next boot; if it is still there after a reboot, \
                 it comes from somewhere other than {} (the bootloader's own configuration, a \
                 PXE append line)",
                path.display()
            ));
        }
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

/// `flatcar.autologin`, `flatcar.autologin=TTY`, and the same under the old `coreos.` name.
fn is_autologin(word: &str) -> bool {
    ["flatcar.autologin", "coreos.autologin"]
        .iter()
        .any(|name| {
            word.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
}

/// The first `[Service]` `ExecStart=` of a drop-in that runs agetty (or getty) with
/// `--autologin USER` or `-a USER`: its line and command.
fn autologin_exec(text: &str) -> Option<(usize, String)> {
    settings(text, "Service")
        .into_iter()
        .filter(|(_, key, _)| key == "ExecStart")
        .find_map(|(line, _, value)| {
            let words = words(&value);
            // systemd's prefixes (`-`, `@`, `+`, `!`, `:`) come before the program.
            let program = words.first()?.trim_start_matches(['-', '@', '+', '!', ':']);
            let name = program.rsplit('/').next().unwrap_or(program);
            let autologin = words
                .iter()
                .any(|w| w == "-a" || w == "--autologin" || w.starts_with("--autologin="));
            (matches!(name, "agetty" | "getty") && autologin).then_some((line, value))
        })
}

#[cfg(test)]
mod tests;
