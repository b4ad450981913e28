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

use super::{Action, Control, ControlError, FileWrite, Plan, Validation};
use crate::host::fs::FileSpec;
use crate::host::{kmod, Host, HostError};
use crate::policy::{self, DenyMethod, UsbStorageState};

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
    target: Option<String>,
    files: Vec<(PathBuf, String)>,
    /// Loaded modules on a live host (kernel names), with the modules that use each.
    loaded: BTreeMap<String, Vec<String>>,
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

    fn id(&self) -> &'static str {
        "usb-storage"
    }

    fn title(&self) -> &'static str {
        "USB storage drivers cannot load"
    }

    fn unmanaged(&self) -> Option<String> {
        (self.policy.state == UsbStorageState::Unmanaged)
            .then(|| "left alone (policy: usb-storage.state = \"unmanaged\")".to_owned())
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let loaded = if host.is_live() {
            kmod::loaded()?
        } else {
            BTreeMap::new()
        };
        Ok(State {
            target: host.fs.read_text(&self.policy.file.0)?,
            files: effective_files(host)?,
            loaded,
        })
    }

    fn plan(&self, host: &Host, state: &State) -> Result<Plan, ControlError> {
        let target = &self.policy.file.0;
        let current = effective(&state.files);
        let mut missing = Vec::new();
        for module in &self.policy.modules {
            let name = &module.0;
            let now = current.get(&kmod::kernel_name(name));
            let blacklisted = now.is_some_and(|e| e.blacklisted);
            let denied = now
                .and_then(|e| e.install.as_ref())
                .is_some_and(|(_, cmd)| is_deny(cmd));
            if self.policy.method == DenyMethod::InstallAndBlacklist && !denied {
                missing.push(format!("install {name} /bin/false"));
            }
            if !blacklisted {
                missing.push(format!("blacklist {name}"));
            }
        }

        let mut plan = Plan::managed(String::new());
        if !missing.is_empty() {
            let mut content = state.target.clone().unwrap_or_else(|| HEADER.to_owned());
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            for line in &missing {
                content.push_str(line);
                content.push('\n');
            }
            // Would the new lines win? An earlier `install` elsewhere would still decide.
            let mut after = state.files.clone();
            match after.iter_mut().find(|(p, _)| p == target) {
                Some((_, text)) => text.clone_from(&content),
                None => {
                    after.push((target.clone(), content.clone()));
                    after.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
                }
            }
            let will_be = effective(&after);
            for module in &self.policy.modules {
                if self.policy.method != DenyMethod::InstallAndBlacklist {
                    continue;
                }
                if let Some((at, cmd)) = will_be
                    .get(&kmod::kernel_name(&module.0))
                    .and_then(|e| e.install.as_ref())
                    .filter(|(_, cmd)| !is_deny(cmd))
                {
                    plan.problems.push(format!(
                        "{at} `install {} {cmd}` comes first and still loads the module; remove \
                         that line",
                        module.0
                    ));
                }
            }
            let spec = FileSpec {
                content: content.into_bytes(),
                mode: 0o644,
                owner: host.file_owner(),
                parent_mode: 0o755,
            };
            plan.actions.extend(
                FileWrite::plan(host, target, spec, Validation::None)?.map(Action::WriteFile),
            );
        }

        for module in unload_order(&self.policy.modules, &state.loaded) {
            plan.actions.push(Action::UnloadModule(module));
        }
        let names: Vec<&str> = self.policy.modules.iter().map(|m| m.0.as_str()).collect();
        plan.summary = match (missing.is_empty(), plan.actions.is_empty()) {
            (true, true) => format!("{} cannot load", names.join(", ")),
            (false, _) => format!("add {} to {}", missing.join("; "), target.display()),
            (true, false) => format!("{} denied, but loaded now: unload", names.join(", ")),
        };
        Ok(plan)
    }
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
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        list.iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect()
    }

    #[test]
    fn first_install_wins_and_names_normalise() {
        let found = effective(&files(&[
            (
                "/usr/lib/modprobe.d/a.conf",
                "install usb_storage /sbin/modprobe --ignore-install usb-storage\n",
            ),
            (
                "/etc/modprobe.d/blacklist.conf",
                "blacklist usb-storage # guide\ninstall usb-storage /bin/false\n",
            ),
        ]));
        let usb = &found["usb_storage"];
        assert!(usb.blacklisted);
        assert_eq!(
            usb.install.as_ref().unwrap().0,
            "/usr/lib/modprobe.d/a.conf:1"
        );
        assert!(!is_deny(&usb.install.as_ref().unwrap().1));
    }

    #[test]
    fn users_are_unloaded_first() {
        let loaded: BTreeMap<String, Vec<String>> = [
            ("usb_storage".to_string(), vec!["uas".to_string()]),
            ("uas".to_string(), vec![]),
        ]
        .into();
        let modules = vec![
            policy::ModuleName("usb-storage".into()),
            policy::ModuleName("uas".into()),
        ];
        assert_eq!(unload_order(&modules, &loaded), vec!["uas", "usb_storage"]);
    }
}
