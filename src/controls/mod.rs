//! The controls, one file each behind [`Control`], and [`all`], the one registry of them: the
//! `--only` ids, the run order and the policy sections all come from the `registry!` list below.

mod auditd;
mod console_autologin;
mod core_login;
mod core_sudo;
mod docker_socket;
mod envfile;
mod etcd_locksmith_tls;
mod file_write;
pub mod generator;
mod grub_cfg;
mod kernel_lockdown;
mod plan;
mod selinux;
mod smt;
mod sshd_config;
mod sshd_listen;
mod sshd_socket;
mod sudoers;
mod sysctl;
#[cfg(test)]
mod testkit;
mod unit_file;
mod units;
mod usb_storage;

pub use file_write::{FileState, FileWrite, Validation};
pub use plan::{execute, Action, Disposition, Outcome, Plan};
pub use units::{is_masked_for_good, UnitAction};

use crate::host::session::Session;
use crate::host::{Host, HostError};
use crate::policy::{self, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Failed(String),
}

/// One hardening control: `observe` gathers every fact the plan needs, `plan` only compares and
/// decides, `apply` acts; the engine verifies by observing again.
pub trait Control {
    /// Stable id: the `--only` name, the policy table and the report's `id`.
    const ID: &'static str;
    /// One line for the report.
    const TITLE: &'static str;
    /// The control's policy section.
    type Section: Managed;
    /// What the control reads off the host.
    type State;

    fn section(&self) -> &Self::Section;
    fn observe(&self, host: &Host) -> Result<Self::State, ControlError>;
    /// Pure: no host access, everything comes from `state`.
    fn plan(&self, state: &Self::State) -> Result<Plan, ControlError>;
    /// Carries out the plan. Most controls only need the shared executor.
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        execute(host, &plan.actions)
    }
    /// What remote access the plan's changes would take away from this session, if any.
    fn lockout_risk(&self, _session: &Session) -> Option<String> {
        None
    }
}

/// A policy section that can say "leave this control alone" (`state = "unmanaged"`; `sysctl`
/// says it with `profile`).
pub trait Managed {
    /// The key that holds `"unmanaged"`.
    const KEY: &'static str;
    fn is_unmanaged(&self) -> bool;
}

/// Object-safe face of [`Control`] for the engine.
pub trait Step {
    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    fn assess(&self, host: &Host) -> Result<Plan, ControlError>;
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError>;
    fn lockout_risk(&self, session: &Session) -> Option<String>;
}

impl<C: Control> Step for C {
    fn id(&self) -> &'static str {
        C::ID
    }
    fn title(&self) -> &'static str {
        C::TITLE
    }
    fn assess(&self, host: &Host) -> Result<Plan, ControlError> {
        if self.section().is_unmanaged() {
            return Ok(Plan::with(
                Disposition::Unmanaged,
                format!(
                    "left alone (policy: {}.{} = \"unmanaged\")",
                    C::ID,
                    <C::Section as Managed>::KEY
                ),
            ));
        }
        let state = self.observe(host)?;
        self.plan(&state)
    }
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        Control::apply(self, host, plan)
    }
    fn lockout_risk(&self, session: &Session) -> Option<String> {
        Control::lockout_risk(self, session)
    }
}

/// The registry: each control's type, built from its policy section, in run order. `IDS` and
/// [`all`] are derived from this one list; a test ties it to the policy's table names. `(key:
/// Type)` names the section's key that can say "unmanaged", and its type.
macro_rules! registry {
    ($($module:ident :: $control:ident <- $section:ident ($key:ident : $state:ident)),* $(,)?) => {
        /// Stable ids, in the order a run works through them.
        pub const IDS: &[&str] = &[$(<$module::$control as Control>::ID),*];

        /// The controls the policy governs, in run order.
        pub fn all(policy: &Policy) -> Vec<Box<dyn Step>> {
            vec![$(Box::new($module::$control::new(policy.$section.clone()))),*]
        }

        $(impl Managed for policy::$control {
            const KEY: &'static str = stringify!($key);
            fn is_unmanaged(&self) -> bool {
                self.$key == policy::$state::Unmanaged
            }
        })*
    };
}

registry! {
    sshd_socket::SshdSocket <- sshd_socket(state: SshdSocketState),
    sshd_config::SshdConfig <- sshd_config(state: SshdConfigState),
    sshd_listen::SshdListen <- sshd_listen(state: SshdListenState),
    docker_socket::DockerSocket <- docker_socket(state: DockerSocketState),
    core_sudo::CoreSudo <- core_sudo(state: CoreSudoState),
    core_login::CoreLogin <- core_login(state: CoreLoginState),
    usb_storage::UsbStorage <- usb_storage(state: UsbStorageState),
    smt::Smt <- smt(state: SmtState),
    sysctl::Sysctl <- sysctl(profile: SysctlProfile),
    kernel_lockdown::KernelLockdown <- kernel_lockdown(state: KernelLockdownState),
    console_autologin::ConsoleAutologin <- console_autologin(state: ConsoleAutologinState),
    selinux::Selinux <- selinux(state: SelinuxState),
    auditd::Auditd <- auditd(state: AuditdState),
    etcd_locksmith_tls::EtcdLocksmithTls <- etcd_locksmith_tls(state: TlsAuditState),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every control has a policy table of its id, and the policy has no control table the
    /// registry lacks: the serialised default policy names exactly the registry's ids.
    #[test]
    fn the_registry_and_the_policy_tables_name_the_same_controls() {
        let policy = toml::Value::try_from(Policy::default()).unwrap();
        let tables: Vec<&str> = policy
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|key| !["safety", "report", "journal"].contains(key))
            .collect();
        let mut ids: Vec<&str> = IDS.to_vec();
        ids.sort();
        let mut tables = tables;
        tables.sort();
        assert_eq!(tables, ids);
    }

    /// The places that list the controls for people — the `--only` help, the README's table,
    /// docs/policy.md's sections, docs/cli.md and the JSON schema — follow the registry.
    #[test]
    fn help_and_docs_list_exactly_the_registry() {
        let root = env!("CARGO_MANIFEST_DIR");
        let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
        let quoted = |ids: &[&str]| ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>();
        let cli = read("src/cli.rs");
        let only_help = cli
            .split("/// Only these controls")
            .nth(1)
            .and_then(|rest| rest.split("#[arg").next())
            .unwrap()
            .replace("///", " ");
        let listed: Vec<&str> = only_help
            .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .filter(|word| IDS.contains(word))
            .collect();
        assert_eq!(listed, IDS, "--only help in src/cli.rs");
        let readme = read("README.md");
        let rows: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .filter(|id| !id.contains(' '))
            .collect();
        assert_eq!(rows, IDS, "README.md control table");
        let policy = read("docs/policy.md");
        for id in IDS {
            assert!(
                policy.contains(&format!("### `[{id}]`")),
                "docs/policy.md: {id}"
            );
        }
        let schema = read("docs/json-schema.md");
        assert!(
            schema.contains(&quoted(IDS).join(", ")),
            "docs/json-schema.md"
        );
        let cli_doc = read("docs/cli.md")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(cli_doc.contains(&quoted(IDS).join(", ")), "docs/cli.md");
    }

    #[test]
    fn ids_are_unique_and_in_run_order() {
        let steps = all(&Policy::default());
        let ids: Vec<&str> = steps.iter().map(|s| s.id()).collect();
        assert_eq!(ids, IDS);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
