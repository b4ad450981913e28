//! The policy's schema: one section per control, plus `[safety]`, `[report]` and `[journal]`. What each key may hold is
//! checked while it is read (values.rs); the shapes serde alone would let through, in strict.rs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::sysctl_values::{self, SysctlKey, SysctlValue};
use super::values::{self, AbsolutePath, JournalKeep, ModprobeFile, ModuleName, SudoersMode};

mod sshd;
pub use sshd::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub safety: Safety,
    pub report: ReportSettings,
    pub journal: Journal,
    #[serde(rename = "sshd-socket")]
    pub sshd_socket: SshdSocket,
    #[serde(rename = "sshd-config")]
    pub sshd_config: SshdConfig,
    #[serde(rename = "sshd-listen")]
    pub sshd_listen: SshdListen,
    #[serde(rename = "docker-socket")]
    pub docker_socket: DockerSocket,
    #[serde(rename = "core-sudo")]
    pub core_sudo: CoreSudo,
    #[serde(rename = "core-login")]
    pub core_login: CoreLogin,
    #[serde(rename = "usb-storage")]
    pub usb_storage: UsbStorage,
    pub smt: Smt,
    pub sysctl: Sysctl,
    #[serde(rename = "kernel-lockdown")]
    pub kernel_lockdown: KernelLockdown,
    #[serde(rename = "console-autologin")]
    pub console_autologin: ConsoleAutologin,
    pub selinux: Selinux,
    pub auditd: Auditd,
    #[serde(rename = "etcd-locksmith-tls")]
    pub etcd_locksmith_tls: EtcdLocksmithTls,
}

/// Guard rails that apply across controls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Apply controls that can cut remote access (mask sshd, core nologin, core's sudo when the
    /// operator is core) even when the agent itself runs over SSH.
    pub allow_remote_lockout: bool,
}

/// Where a run's results go besides stdout (docs/fleet.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Prometheus textfile written after every apply and check (`--metrics-file` wins). A path on
    /// the machine that runs the agent, never under `--root`. Unset: no metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<AbsolutePath>,
}

/// The change journal `revert` reads (`/var/lib/flatcar-harden/runs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Journal {
    /// How many runs to keep; older ones are deleted (never one awaiting confirmation or
    /// holding controls).
    pub keep: JournalKeep,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdSocket {
    pub state: SshdSocketState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdSocketState {
    /// Leave sshd.socket as it is.
    #[default]
    Unmanaged,
    /// `systemctl mask --now sshd.socket`: no SSH at all, console only.
    Masked,
    /// Undo a mask: sshd.socket unmasked and listening.
    Enabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSocket {
    pub state: DockerSocketState,
}

impl Default for DockerSocket {
    fn default() -> Self {
        DockerSocket {
            state: DockerSocketState::RootOnly,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerSocketState {
    Unmanaged,
    /// `SocketGroup=root` through the drop-in `10-restrict.conf`.
    RootOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreSudo {
    pub state: CoreSudoState,
    /// Mode of `/etc/sudoers.d/core-passwd`. visudo and audits expect 0440.
    pub file_mode: SudoersMode,
}

impl Default for CoreSudo {
    fn default() -> Self {
        CoreSudo {
            state: CoreSudoState::Unmanaged,
            file_mode: SudoersMode(0o440),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreSudoState {
    #[default]
    Unmanaged,
    /// `core ALL=(ALL) ALL`: with no password set, core can no longer use sudo.
    RequirePassword,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreLogin {
    pub state: CoreLoginState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreLoginState {
    #[default]
    Unmanaged,
    /// core's login shell becomes `/sbin/nologin`.
    Nologin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsbStorage {
    pub state: UsbStorageState,
    /// Modules to keep from loading: at least one, each once.
    #[serde(deserialize_with = "values::module_list")]
    pub modules: Vec<ModuleName>,
    pub method: DenyMethod,
    /// Where missing lines are added (the guide's path).
    pub file: ModprobeFile,
}

impl Default for UsbStorage {
    fn default() -> Self {
        UsbStorage {
            state: UsbStorageState::Denied,
            modules: vec![ModuleName("usb-storage".into()), ModuleName("uas".into())],
            method: DenyMethod::InstallAndBlacklist,
            file: ModprobeFile(PathBuf::from("/etc/modprobe.d/blacklist.conf")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsbStorageState {
    Unmanaged,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyMethod {
    /// `install MOD /bin/false` and `blacklist MOD`: no load at all (CIS, SCAP).
    InstallAndBlacklist,
    /// `blacklist MOD` only, the guide's form: stops hotplug loading, not `modprobe MOD`.
    Blacklist,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smt {
    pub state: SmtState,
    /// The OEM grub.cfg that carries kernel arguments on Flatcar: one of `GRUB_CFG_PATHS`.
    #[serde(deserialize_with = "values::oem_grub_cfg")]
    pub grub_cfg: AbsolutePath,
}

impl Default for Smt {
    fn default() -> Self {
        Smt {
            state: SmtState::Unmanaged,
            grub_cfg: AbsolutePath(PathBuf::from("/oem/grub.cfg")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtState {
    #[default]
    Unmanaged,
    /// Kernel argument `nosmt`: SMT always off.
    Off,
    /// `mitigations=auto,nosmt`: off only where a known vulnerability needs it.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelLockdown {
    pub state: KernelLockdownState,
    /// The OEM grub.cfg that carries `lockdown=`: one of `GRUB_CFG_PATHS`.
    #[serde(deserialize_with = "values::oem_grub_cfg")]
    pub grub_cfg: AbsolutePath,
}

impl Default for KernelLockdown {
    fn default() -> Self {
        KernelLockdown {
            state: KernelLockdownState::Unmanaged,
            grub_cfg: AbsolutePath(PathBuf::from("/oem/grub.cfg")),
        }
    }
}

/// The kernel's lockdown levels the policy can ask for, lowest first (`none` is not one: that
/// is `unmanaged`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelLockdownState {
    #[default]
    Unmanaged,
    /// `lockdown=integrity`: nothing may modify the running kernel (unsigned modules, /dev/mem,
    /// kexec of unsigned images, hibernation, MSR writes, kprobes, …).
    Integrity,
    /// `lockdown=confidentiality`: integrity, and nothing may read kernel memory either.
    Confidentiality,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleAutologin {
    pub state: ConsoleAutologinState,
    /// The OEM grub.cfg whose `flatcar.autologin` goes: one of `GRUB_CFG_PATHS`.
    #[serde(deserialize_with = "values::oem_grub_cfg")]
    pub grub_cfg: AbsolutePath,
}

impl Default for ConsoleAutologin {
    fn default() -> Self {
        ConsoleAutologin {
            state: ConsoleAutologinState::Unmanaged,
            grub_cfg: AbsolutePath(PathBuf::from("/oem/grub.cfg")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsoleAutologinState {
    #[default]
    Unmanaged,
    /// No `flatcar.autologin` in the OEM grub.cfg, no getty autologin drop-in in /etc.
    Off,
}

/// Kernel settings (`/proc/sys`) now and at every boot (`/etc/sysctl.d/`). The control's switch
/// is `profile`, not `state`: it says which table of settings to hold, `unmanaged` none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sysctl {
    pub profile: SysctlProfile,
    /// Keys to add to the profile or to set to another value than the profile's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<SysctlKey, SysctlValue>,
    /// Profile keys to leave alone.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "sysctl_values::sysctl_exclude"
    )]
    pub exclude: Vec<SysctlKey>,
    /// Let `settings` turn IPv4/IPv6 forwarding off on a host with a container runtime (which
    /// loses its container networking).
    pub allow_forwarding_off: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SysctlProfile {
    #[default]
    Unmanaged,
    /// The settings of docs/policy.md's table, safe for a host running containers.
    ContainerHost,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selinux {
    pub state: SelinuxState,
    /// Switch to enforcing even though this boot logged AVC denials in permissive mode (what
    /// enforcing would have refused). Off: such denials stop the switch.
    pub allow_denials: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelinuxState {
    #[default]
    Unmanaged,
    Enforcing,
    Permissive,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auditd {
    pub state: AuditdState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditdState {
    #[default]
    Unmanaged,
    /// auditd enabled and running, the agent's rule set loaded, no rule that ignores everything.
    Enabled,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdLocksmithTls {
    pub state: TlsAuditState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsAuditState {
    Unmanaged,
    /// Read-only audit: never writes.
    #[default]
    Audit,
}
