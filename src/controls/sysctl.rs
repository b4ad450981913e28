//! Kernel settings (`/proc/sys`) by a profile safe for container hosts, now and at every boot.
//!
//! Two halves, like smt:
//!
//! - **Persistent**: one file, `/etc/sysctl.d/zz-flatcar-harden.conf`, named to sort after every
//!   numbered file (`60-baselayout.conf`, Debian's `99-sysctl.conf` link to `/etc/sysctl.conf`),
//!   so that systemd-sysctl applies it last at boot. A later-sorting file that sets one of its
//!   keys to another value (or drops it with `-key`) wins at boot: that is drift, named file:line
//!   (conf.rs holds systemd-sysctl's rules).
//! - **Runtime**: each key whose `/proc/sys` value differs is written there (live only); the value
//!   is compared as the kernel prints it. A key this kernel does not have is not applicable, for
//!   that key alone.
//!
//! The profile never touches forwarding, `rp_filter`, bridge netfilter or user namespaces (see
//! profile.rs). `settings` may; turning forwarding off on a host with a container runtime is
//! refused unless `allow_forwarding_off`.

mod conf;
mod profile;

use std::path::Path;

use super::{Action, Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::kernel::same_value;
use crate::host::Host;
use crate::policy::{self, SysctlProfile};
use conf::ConfFile;

/// The agent's file: a letter sorts after every digit, so it follows the numbered files.
pub const FILE: &str = "/etc/sysctl.d/zz-flatcar-harden.conf";

pub struct Sysctl {
    policy: policy::Sysctl,
}

impl Sysctl {
    pub fn new(policy: policy::Sysctl) -> Self {
        Sysctl { policy }
    }

    /// The keys and values to hold, in the profile's order, then the added ones by name.
    fn wanted(&self) -> Vec<(String, String)> {
        let table = match self.policy.profile {
            SysctlProfile::ContainerHost => profile::CONTAINER_HOST,
            SysctlProfile::Unmanaged => &[],
        };
        let excluded = |key: &str| self.policy.exclude.iter().any(|e| e.0 == key);
        let mut wanted: Vec<(String, String)> = table
            .iter()
            .filter(|s| !excluded(s.key))
            .map(|s| (s.key.to_owned(), s.value.to_owned()))
            .collect();
        for (key, value) in &self.policy.settings {
            match wanted.iter_mut().find(|(k, _)| *k == key.0) {
                Some(slot) => slot.1 = value.0.clone(),
                None => wanted.push((key.0.clone(), value.0.clone())),
            }
        }
        wanted
    }
}

pub struct State {
    file: FileState,
    owner: Owner,
    /// Every sysctl.d file as found: path and text (`None`: masked, or empty).
    conf: Vec<(String, Option<String>)>,
    /// Files that show a container runtime is installed.
    runtimes: Vec<String>,
    /// `/proc/sys` value of each wanted key (`None`: this kernel has no such key); `None` for an
    /// image.
    runtime: Option<Vec<Option<String>>>,
}

impl Control for Sysctl {
    type State = State;

    const ID: &'static str = "sysctl";
    const TITLE: &'static str = "Kernel settings (sysctl) for a container host";
    type Section = policy::Sysctl;

    fn section(&self) -> &policy::Sysctl {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let mut conf = Vec::new();
        for dir in conf::DIRS {
            for name in host.fs.list_dir(Path::new(dir))? {
                let name = name.to_string_lossy();
                if !name.ends_with(".conf") || name.starts_with('.') {
                    continue;
                }
                let path = format!("{dir}/{name}");
                let masked = host
                    .fs
                    .read_link(Path::new(&path))?
                    .is_some_and(|target| target == Path::new("/dev/null"));
                let text = match masked {
                    true => None,
                    false => host.fs.read_text_lossy(Path::new(&path))?,
                };
                conf.push((path, text.filter(|t| !t.is_empty())));
            }
        }
        let mut runtimes = Vec::new();
        for path in profile::CONTAINER_RUNTIMES {
            if host.fs.lstat(Path::new(path))?.is_some() {
                runtimes.push((*path).to_owned());
            }
        }
        let runtime = match host.kernel() {
            None => None,
            Some(kernel) => Some(
                self.wanted()
                    .iter()
                    .map(|(key, _)| kernel.read(&proc_path(key)))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(State {
            file: FileState::observe(host, Path::new(FILE))?,
            owner: host.file_owner(),
            conf,
            runtimes,
            runtime,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let wanted = self.wanted();
        let mut plan = Plan::managed(String::new());
        for key in &self.policy.exclude {
            if !profile::CONTAINER_HOST.iter().any(|s| s.key == key.0) {
                plan.notes.push(format!(
                    "sysctl.exclude names {}, which the profile does not set: nothing to leave out",
                    key.0
                ));
            }
        }

        for key in self.policy.settings.keys() {
            if profile::never(&key.0) {
                plan.notes.push(format!(
                    "sysctl.settings sets {}, which no profile touches on a container host \
                     (container networking or sandboxes depend on it): held as the policy says",
                    key.0
                ));
            }
        }

        // Forwarding off cuts every container's network: refused before anything is written.
        let off: Vec<String> = wanted
            .iter()
            .filter(|(key, value)| profile::forwarding_off(key, value))
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        if !off.is_empty() && !state.runtimes.is_empty() && !self.policy.allow_forwarding_off {
            plan.summary = "refused: the policy turns IP forwarding off on a container host".into();
            plan.problems.push(format!(
                "sysctl.settings has {}, but a container runtime is installed ({}): without \
                 forwarding, containers lose their network (published ports, NAT to the outside); \
                 nothing written. Remove the key, or set sysctl.allow_forwarding_off = true if \
                 this host must not forward",
                off.join(", "),
                state.runtimes.join(", ")
            ));
            return Ok(plan);
        }

        // Persistent half: the agent's file.
        let content = render(self.policy.profile, &wanted);
        let (mode, owner) = state.file.mode_owner().unwrap_or((0o644, state.owner));
        let spec = FileSpec {
            content: content.clone().into_bytes(),
            mode,
            owner,
            parent_mode: 0o755,
        };
        let write = FileWrite::plan(&state.file, spec, Validation::None);
        let mut summary = vec![match &write {
            Some(_) => format!("write {} ({} settings)", FILE, wanted.len()),
            None => format!("{FILE} holds the {} settings", wanted.len()),
        }];
        plan.actions.extend(write.map(Action::WriteFile));

        // What systemd-sysctl will apply at boot, with the agent's file as it will be.
        let mut found = state.conf.clone();
        found.retain(|(path, _)| path != FILE);
        found.push((FILE.to_owned(), Some(content)));
        let files = conf::order(found);
        for (key, value) in &wanted {
            at_boot(&files, key, value, &mut plan);
        }

        // Runtime half.
        match &state.runtime {
            None => plan.pending.push(format!(
                "takes effect at boot: there is no running kernel under this root; \
                 systemd-sysctl applies {FILE} when the image boots"
            )),
            Some(values) => {
                let mut set = Vec::new();
                let mut missing = Vec::new();
                for ((key, value), now) in wanted.iter().zip(values) {
                    let Some(now) = now else {
                        missing.push(key.clone());
                        continue;
                    };
                    if same_value(now, value) {
                        continue;
                    }
                    if profile::one_way(key, value) {
                        plan.notes.push(format!(
                            "{key} = {value} cannot be undone until the next boot: revert \
                             cannot put {now} back"
                        ));
                    }
                    set.push(format!("{key} {now} -> {value}"));
                    plan.actions.push(Action::WriteKernelSetting {
                        path: proc_path(key),
                        value: value.clone(),
                        before: now.clone(),
                    });
                }
                if !missing.is_empty() {
                    plan.notes.push(format!(
                        "not applicable on this kernel (no such key under /proc/sys): {}",
                        missing.join(", ")
                    ));
                }
                summary.push(match set.is_empty() {
                    true => format!(
                        "/proc/sys has all {} settings",
                        wanted.len() - missing.len()
                    ),
                    false => format!("set {}", set.join(", ")),
                });
            }
        }
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

/// Drift at boot for one key: the line that wins is not the agent's; globs that match it are
/// noted (they never beat an explicit key, but set their value on every name they match).
fn at_boot(files: &[ConfFile], key: &str, value: &str, plan: &mut Plan) {
    let slash = key.replace('.', "/");
    match conf::winner(files, &slash) {
        Some(line) if line.path != FILE => match &line.value {
            Some(v) if same_value(v, value) => {}
            Some(v) => plan.problems.push(format!(
                "{}:{} sets {key} = {v}, and systemd-sysctl reads it after {FILE} at boot \
                 (later name wins), so the boot ends with {v}, not {value}: remove the line, or \
                 leave the key to it with sysctl.exclude / sysctl.settings",
                line.path, line.number
            )),
            None => plan.problems.push(format!(
                "{}:{} (`-{key}`) comes after {FILE} at boot and drops its {key} = {value}: \
                 remove the line",
                line.path, line.number
            )),
        },
        _ => {}
    }
    for line in conf::globs(files, &slash) {
        if line.path != FILE && !same_value(line.value.as_deref().unwrap_or(""), value) {
            plan.notes.push(format!(
                "{}:{} sets `{} = {}`, which matches {key}: an explicit key beats a glob at \
                 boot, so {key} stays {value}, but the pattern sets its value on every other \
                 name it matches",
                line.path,
                line.number,
                line.key.replace('/', "."),
                line.value.as_deref().unwrap_or("")
            ));
        }
    }
}

fn proc_path(key: &str) -> String {
    format!(
        "{}/{}",
        crate::host::kernel::PROC_SYS,
        key.replace('.', "/")
    )
}

/// The agent's file: a header, then one `key = value` line per setting, with the profile's
/// reason above each of its own.
fn render(profile: SysctlProfile, wanted: &[(String, String)]) -> String {
    let name = match profile {
        SysctlProfile::ContainerHost => "container-host",
        SysctlProfile::Unmanaged => "unmanaged",
    };
    let mut out = format!(
        "# Written by flatcar-harden (policy [sysctl], profile {name}); it rewrites this file,\n\
         # so change the policy instead. Named to sort after every numbered sysctl.d file:\n\
         # systemd-sysctl applies it last at boot.\n"
    );
    for (key, value) in wanted {
        let why = profile::CONTAINER_HOST
            .iter()
            .find(|s| s.key == key && s.value == value)
            .map_or("set by the policy's sysctl.settings", |s| s.why);
        out.push_str(&format!("\n# {why}\n{key} = {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests;
