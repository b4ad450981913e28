//! Keep USB storage drivers from loading.
//!
//! The guide writes `blacklist usb-storage` to `/etc/modprobe.d/blacklist.conf`. A blacklist only
//! stops loading through aliases (hotplug); `modprobe usb-storage` still loads it. So by default
//! both `install MOD /bin/false` and `blacklist MOD` are required (CIS, SCAP), for `usb-storage`
//! and `uas`. The effective configuration is read as kmod reads it: `*.conf` from `/etc`, `/run`,
//! `/usr/local/lib`, `/usr/lib` and `/lib` `modprobe.d`, a name in an earlier directory hiding
//! the same name in a later one, all files parsed in name order, the first `install` for a module
//! winning. Only missing lines are added; a module that is loaded now is unloaded when it can be.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Action, Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::kmod::{self, ModprobeAnswer};
use crate::host::{Host, HostError};
use crate::policy::{self, DenyMethod};

const CONF_DIRS: [&str; 5] = [
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];
/// `install` commands that load nothing.
const DENY_COMMANDS: [&str; 4] = ["/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true"];
const HEADER: &str =
    "# Written by flatcar-harden (usb-storage): keep USB storage drivers from loading.\n";

pub struct UsbStorage {
    policy: policy::UsbStorage,
}

impl UsbStorage {
    pub fn new(policy: policy::UsbStorage) -> Self {
        UsbStorage { policy }
    }
}

pub struct State {
    /// The policy's target file as it is now.
    target: FileState,
    /// Every file kmod reads, in its order, as text (bytes that are not UTF-8 replaced).
    files: Vec<(PathBuf, String)>,
    /// Loaded modules on a live host (kernel names), with the modules that use each.
    loaded: BTreeMap<String, Vec<String>>,
    /// kmod's own answer per policy module (`modprobe -n -v`), where it could be asked.
    modprobe: BTreeMap<String, ModprobeAnswer>,
    owner: Owner,
}

/// How one module stands in the effective configuration.
#[derive(Debug, Default)]
struct Effective {
    blacklisted: bool,
    /// The winning `install` line: where it is and its command.
    install: Option<(String, String)>,
}

impl Control for UsbStorage {
    type State = State;

    const ID: &'static str = "usb-storage";
    const TITLE: &'static str = "USB storage drivers cannot load";
    type Section = policy::UsbStorage;

    fn section(&self) -> &policy::UsbStorage {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let (loaded, modprobe) = match host.kernel() {
            Some(kernel) => (
                kernel.loaded_modules()?,
                self.policy
                    .modules
                    .iter()
                    .filter_map(|m| Some((m.0.clone(), kernel.modprobe_dry_run(&m.0)?)))
                    .collect(),
            ),
            None => Default::default(),
        };
        Ok(State {
            target: FileState::observe(host, &self.policy.file.0)?,
            files: effective_files(host)?,
            loaded,
            modprobe,
            owner: host.file_owner(),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let target = &self.policy.file.0;
        let current = effective(&state.files);
        let own_lines = state
            .target
            .text()
            .map(|t| logical_lines(&t))
            .unwrap_or_default();
        let wants_install = self.policy.method == DenyMethod::InstallAndBlacklist;
        // Lines the effective configuration lacks and our file does not already hold: a line
        // that is there but loses to an earlier file is reported below, never appended again.
        let mut missing = Vec::new();
        for module in &self.policy.modules {
            let name = &module.0;
            let now = current.get(&kmod::kernel_name(name));
            let denied = now
                .and_then(|e| e.install.as_ref())
                .is_some_and(|(_, cmd)| is_deny(cmd));
            let install = format!("install {name} /bin/false");
            if wants_install && !denied && !own_lines.contains(&install) {
                missing.push(install);
            }
            let blacklist = format!("blacklist {name}");
            if !now.is_some_and(|e| e.blacklisted) && !own_lines.contains(&blacklist) {
                missing.push(blacklist);
            }
        }

        let mut plan = Plan::managed(String::new());
        let mut after = state.files.clone();
        if !missing.is_empty() {
            let mut content = state
                .target
                .content
                .clone()
                .unwrap_or_else(|| HEADER.as_bytes().to_vec());
            if !content.is_empty() && !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            for line in &missing {
                content.extend_from_slice(line.as_bytes());
                content.push(b'\n');
            }
            let text = String::from_utf8_lossy(&content).into_owned();
            match after.iter_mut().find(|(p, _)| p == target) {
                Some((_, old)) => *old = text,
                None => {
                    after.push((target.clone(), text));
                    after.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
                }
            }
            let (mode, owner) = state.target.mode_owner().unwrap_or((0o644, state.owner));
            let spec = FileSpec {
                content,
                mode,
                owner,
                parent_mode: 0o755,
            };
            plan.actions.extend(
                FileWrite::plan(&state.target, spec, Validation::None).map(Action::WriteFile),
            );
        }

        // Would the configuration in force (after our lines) deny the modules? An earlier
        // `install` line elsewhere decides, and kmod itself has the last word.
        let will_be = effective(&after);
        for module in &self.policy.modules {
            let name = &module.0;
            if !wants_install {
                continue;
            }
            if let Some((at, cmd)) = will_be
                .get(&kmod::kernel_name(name))
                .and_then(|e| e.install.as_ref())
                .filter(|(_, cmd)| !is_deny(cmd))
            {
                plan.problems.push(format!(
                    "{at} `install {name} {cmd}` comes first and wins over {}, so the module \
                     still loads; remove that line",
                    target.display()
                ));
            } else if let Some(answer) = state.modprobe.get(name).filter(|a| a.would_load(name)) {
                // Checked on what is in force now: after our write, observe asks kmod again.
                if plan.actions.is_empty() {
                    plan.problems.push(format!(
                        "kmod would still load {name}: `modprobe -n -v {name}` says `{}`; see \
                         `modprobe --showconfig | grep {}`",
                        answer.lines.join("; "),
                        kmod::kernel_name(name)
                    ));
                }
            }
        }

        for module in unload_order(&self.policy.modules, &state.loaded) {
            plan.actions.push(Action::UnloadModule(module));
        }
        let names: Vec<&str> = self.policy.modules.iter().map(|m| m.0.as_str()).collect();
        plan.summary = match (missing.is_empty(), plan.actions.is_empty()) {
            (true, true) if !plan.problems.is_empty() => {
                format!("{} can still load", names.join(", "))
            }
            (true, true) => format!("{} cannot load", names.join(", ")),
            (false, _) => format!("add {} to {}", missing.join("; "), target.display()),
            (true, false) => format!("{} denied, but loaded now: unload", names.join(", ")),
        };
        Ok(plan)
    }
}

/// A modprobe.d text's lines without comments and with runs of blanks folded, for "is this line
/// there already".
fn logical_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn is_deny(command: &str) -> bool {
    DENY_COMMANDS.contains(&command.trim())
}

/// The `*.conf` files kmod reads, in the order it parses them.
fn effective_files(host: &Host) -> Result<Vec<(PathBuf, String)>, HostError> {
    let mut by_name: BTreeMap<OsString, PathBuf> = BTreeMap::new();
    for dir in CONF_DIRS {
        for name in host.fs.list_dir(Path::new(dir))? {
            if name.as_bytes().ends_with(b".conf") {
                // The first directory in CONF_DIRS that has a name wins.
                by_name
                    .entry(name.clone())
                    .or_insert_with(|| Path::new(dir).join(name));
            }
        }
    }
    let mut files = Vec::new();
    for path in by_name.into_values() {
        if let Some(text) = host.fs.read_text_lossy(&path)? {
            files.push((path, text));
        }
    }
    Ok(files)
}

/// Per kernel module name: blacklisted anywhere, and the first `install` line.
fn effective(files: &[(PathBuf, String)]) -> BTreeMap<String, Effective> {
    let mut modules: BTreeMap<String, Effective> = BTreeMap::new();
    for (path, text) in files {
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.splitn(3, char::is_whitespace);
            match (words.next(), words.next()) {
                (Some("blacklist"), Some(module)) => {
                    modules
                        .entry(kmod::kernel_name(module))
                        .or_default()
                        .blacklisted = true;
                }
                (Some("install"), Some(module)) => {
                    let entry = modules.entry(kmod::kernel_name(module)).or_default();
                    if entry.install.is_none() {
                        let command = words.next().unwrap_or("").trim().to_owned();
                        entry.install =
                            Some((format!("{}:{}", path.display(), index + 1), command));
                    }
                }
                _ => {}
            }
        }
    }
    modules
}

/// The denied modules that are loaded, users first (`uas` before `usb_storage`).
fn unload_order(
    modules: &[policy::ModuleName],
    loaded: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut left: Vec<String> = modules
        .iter()
        .map(|m| kmod::kernel_name(&m.0))
        .filter(|m| loaded.contains_key(m))
        .collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|m| {
                !loaded[m]
                    .iter()
                    .any(|user| left.contains(user) && user != m)
            })
            .unwrap_or(0);
        order.push(left.remove(ready));
    }
    order
}

#[cfg(test)]
mod tests;
