//! The policy's schema: one section per control, plus `[safety]`, `[report]` and `[journal]`. What each key may hold is
//! checked while it is read (values.rs); the shapes serde alone would let through, in strict.rs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::values::{
    self, AbsolutePath, JournalKeep, ListenAddress, ModprobeFile, ModuleName, SudoersMode,
};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub safety: Safety,
    pub report: ReportSettings,
    pub journal: Journal,
    #[serde(rename = "sshd-socket")]
    pub sshd_socket: SshdSocket,
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
    pub selinux: Selinux,
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

/// `[sshd-listen]`: the addresses sshd.socket listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdListen {
    pub state: SshdListenState,
    /// `IP:port` each (`[v6]:port` for IPv6), every address once; required when enforced.
    #[serde(
        deserialize_with = "values::listen_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub listen: Vec<ListenAddress>,
    /// Allow addresses the host does not have (yet): the socket binds them with `FreeBind=yes`.
    pub allow_absent_address: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdListenState {
    /// Leave sshd.socket's addresses as they are.
    #[default]
    Unmanaged,
    /// A drop-in replaces every `ListenStream=` with the policy's `listen`.
    Enforced,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selinux {
    pub state: SelinuxState,
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
