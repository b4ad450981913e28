//! The OEM grub.cfg as a file: observed once (content, mode, owner, whether the OEM partition is
//! there), read as text and written back atomically keeping its mode and owner.

use std::path::Path;

use crate::controls::{Action, ControlError, FileState, FileWrite, Validation};
use crate::host::fs::{FileKind, FileSpec, Owner};
use crate::host::Host;

/// What a kernel-argument control knows of the OEM grub.cfg.
pub struct GrubCfg {
    pub file: FileState,
    /// Who owns a grub.cfg the agent creates.
    owner: Owner,
    /// The directory holding grub.cfg exists (the OEM partition is mounted).
    dir_exists: bool,
}

impl GrubCfg {
    pub fn observe(host: &Host, path: &Path) -> Result<GrubCfg, ControlError> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        Ok(GrubCfg {
            file: FileState::observe(host, path)?,
            owner: host.file_owner(),
            dir_exists: host
                .fs
                .stat(dir)?
                .is_some_and(|m| m.kind == FileKind::Directory),
        })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The content as text (empty when there is no file); a problem for the report when it is
    /// not UTF-8, since the editor would have to guess.
    pub fn text(&self) -> Result<&str, String> {
        match self.file.content.as_deref().map(std::str::from_utf8) {
            None => Ok(""),
            Some(Ok(text)) => Ok(text),
            Some(Err(_)) => Err(format!(
                "{} is not UTF-8 text; it is left alone (GRUB reads ASCII): fix its encoding",
                self.path().display()
            )),
        }
    }

    /// The write that gives grub.cfg `content` (its mode and owner kept; 0644 for a new file),
    /// `None` when it has that already. A problem naming the policy key `key` when the OEM
    /// directory is missing: the agent does not create the partition's mount point.
    pub fn write(&self, content: &str, key: &str) -> Result<Option<Action>, String> {
        if self.file.content.as_deref() == Some(content.as_bytes()) {
            return Ok(None);
        }
        if !self.dir_exists {
            return Err(format!(
                "{} does not exist, so {} cannot be written: is the OEM partition mounted? \
                 (policy key {key})",
                self.path().parent().unwrap_or(Path::new("/")).display(),
                self.path().display()
            ));
        }
        let (mode, owner) = self.file.mode_owner().unwrap_or((0o644, self.owner));
        let spec = FileSpec {
            content: content.as_bytes().to_vec(),
            mode,
            owner,
            parent_mode: 0o755,
        };
        Ok(FileWrite::plan(&self.file, spec, Validation::None).map(Action::WriteFile))
    }
}
