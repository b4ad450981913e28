//! What one journal record holds: the object an action touched and its state before and after
//! (a file's image, a unit's mask or running state, a socket's group, a kernel setting, …).

use serde::{Deserialize, Serialize};

/// What a path held: nothing, a link, or a regular file with its bytes, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Image {
    Absent,
    Symlink {
        target: String,
    },
    Regular {
        mode: u32,
        uid: u32,
        gid: u32,
        /// The content, hex-encoded (bytes need not be UTF-8).
        content: String,
    },
}

/// The prior state of what one action touches, and the state the action leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "object", rename_all = "kebab-case")]
pub enum Object {
    /// A file or link under the root; `created_dirs` are the directories the action creates
    /// above it (outermost first), removed again when the file is.
    File {
        path: String,
        before: Image,
        after: Image,
        #[serde(default)]
        created_dirs: Vec<String>,
    },
    /// Whether a unit is masked.
    UnitFile {
        unit: String,
        masked_before: bool,
        masked_after: bool,
    },
    /// Whether a unit is enabled (the links of its `[Install]` section).
    UnitEnabled {
        unit: String,
        enabled_before: bool,
        enabled_after: bool,
    },
    /// Whether a unit is running.
    UnitActive {
        unit: String,
        active_before: bool,
        active_after: bool,
    },
    /// systemd re-read its unit files.
    Reload,
    /// A running daemon was told to read its configuration again (`sshd.service`): a revert
    /// that puts its files back tells it again.
    UnitReload { unit: String },
    /// The audit rules of `/etc/audit/rules.d` were loaded into the kernel; a revert loads them
    /// again once it has put the files back.
    AuditRulesLoaded,
    /// A running unit was restarted to take up changed unit files (sshd.socket's addresses):
    /// a revert that puts those files back restarts it again.
    Restart { unit: String },
    /// The group of a socket file.
    SocketGroup {
        path: String,
        gid_before: u32,
        gid_after: u32,
    },
    /// A runtime kernel setting (sysfs, selinuxfs). `one_way`: one the kernel only lets go up
    /// (lockdown), which a revert cannot write back.
    KernelSetting {
        path: String,
        before: String,
        after: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        one_way: bool,
    },
    /// A module was unloaded: noted only, it is never loaded back.
    ModuleUnloaded { module: String },
}
