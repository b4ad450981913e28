//! Reading the journal back. A journal is data the agent later writes back as root, so it is read
//! like a policy: every directory a real directory (never a link) owned by the agent's user and
//! writable by no one else, every file regular and bounded, a strict schema, and every value
//! checked (paths absolute and plain inside the root, unit names, control ids). Anything off is a
//! [`JournalError`] naming the file: exit 2, nothing written.

use std::ffi::OsString;
use std::path::{Component, Path};

use serde::de::DeserializeOwned;

use super::record::{unhex, Image, Object, Record};
use super::{run_dir, time, JournalError, RunMeta, FORMAT, JOURNAL_DIRS, RUNS_DIR, RUN_FILE};
use crate::controls::IDS;
use crate::host::fs::{FileKind, Metadata};
use crate::host::Host;

/// The most records one run may have (a full-guide run has about a dozen).
const MAX_RECORDS: usize = 10_000;
/// The longest path a record may name.
const MAX_PATH: usize = 4096;

/// A run and its records, in the order they were written.
#[derive(Debug, Clone)]
pub struct Run {
    pub meta: RunMeta,
    pub records: Vec<Record>,
}

impl Run {
    /// The controls the run changed, in the order it changed them.
    pub fn controls(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = Vec::new();
        for record in &self.records {
            let id = control_id(&record.control).expect("checked on read");
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// The registry's id for a recorded control name.
pub fn control_id(name: &str) -> Option<&'static str> {
    IDS.iter().copied().find(|id| *id == name)
}

/// Every run's `run.json`, oldest first. No journal yet: none.
pub fn runs(host: &Host) -> Result<Vec<RunMeta>, JournalError> {
    if !journal_exists(host)? {
        return Ok(Vec::new());
    }
    let mut metas = Vec::new();
    for id in run_ids(host)? {
        metas.push(meta(host, &id)?);
    }
    Ok(metas)
}

/// The newest run's id.
pub fn last_id(host: &Host) -> Result<Option<String>, JournalError> {
    if !journal_exists(host)? {
        return Ok(None);
    }
    Ok(run_ids(host)?.pop())
}

/// One run, all of it checked.
pub fn load(host: &Host, id: &str) -> Result<Run, JournalError> {
    let meta = meta(host, id)?;
    let dir = run_dir(id);
    let mut numbered = Vec::new();
    for name in names(host, &dir)? {
        if name == RUN_FILE {
            continue;
        }
        let seq = name
            .strip_suffix(".json")
            .filter(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| {
                JournalError::new(dir.join(&name), "is not a file the journal writes")
            })?;
        numbered.push(seq);
    }
    if numbered.len() > MAX_RECORDS {
        return Err(JournalError::new(
            &dir,
            format!("has {} records, more than {MAX_RECORDS}", numbered.len()),
        ));
    }
    numbered.sort_unstable();
    let mut records = Vec::new();
    for (index, seq) in numbered.into_iter().enumerate() {
        let file = super::record_file(id, seq);
        if seq as usize != index + 1 {
            return Err(JournalError::new(
                &file,
                format!("record {} is missing before it", index + 1),
            ));
        }
        let record: Record = json(host, &file)?;
        check_record(&record, seq).map_err(|reason| JournalError::new(&file, reason))?;
        records.push(record);
    }
    Ok(Run { meta, records })
}

/// A run's `run.json`, checked; a run id that is not in the journal is an error too.
pub fn meta(host: &Host, id: &str) -> Result<RunMeta, JournalError> {
    if !time::is_run_id(id) {
        return Err(JournalError::new(
            RUNS_DIR,
            format!("`{id}` is not a run id (they look like 20261130-104848-123; see `flatcar-harden runs`)"),
        ));
    }
    let dir = run_dir(id);
    if !journal_exists(host)? || !directory(host, &dir)? {
        return Err(JournalError::new(
            &dir,
            "no such run (`flatcar-harden runs` lists them)",
        ));
    }
    let file = dir.join(RUN_FILE);
    let meta: RunMeta = json(host, &file)?;
    let reason = if meta.format != FORMAT {
        Some(format!(
            "format {} is not {FORMAT}, the one this agent reads",
            meta.format
        ))
    } else if meta.id != id {
        Some(format!(
            "names run `{}`, not its directory's `{id}`",
            meta.id
        ))
    } else if meta.command.len() > MAX_PATH || meta.command.chars().any(char::is_control) {
        Some("the command is too long or holds a control character".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JournalError::new(&file, reason)),
        None => Ok(meta),
    }
}

/// Whether the journal directories exist, each checked.
fn journal_exists(host: &Host) -> Result<bool, JournalError> {
    for dir in JOURNAL_DIRS {
        if !directory(host, Path::new(dir))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The run directories, oldest first; any other name in the runs directory is an error.
fn run_ids(host: &Host) -> Result<Vec<String>, JournalError> {
    let mut ids = Vec::new();
    for name in names(host, Path::new(RUNS_DIR))? {
        if !time::is_run_id(&name) {
            return Err(JournalError::new(
                Path::new(RUNS_DIR).join(&name),
                "is not a run directory (names look like 20261130-104848-123)",
            ));
        }
        ids.push(name);
    }
    ids.sort();
    Ok(ids)
}

/// Names in a journal directory, the agent's own leftover temporaries (an interrupted write)
/// left out; a name that is not UTF-8 is an error.
fn names(host: &Host, dir: &Path) -> Result<Vec<String>, JournalError> {
    let listed = host
        .fs
        .list_dir(dir)
        .map_err(|e| JournalError::new(dir, e.to_string()))?;
    let mut names = Vec::new();
    for name in listed {
        if crate::host::fs::is_temporary(&name) {
            continue;
        }
        let name = name.into_string().map_err(|name: OsString| {
            JournalError::new(dir.join(&name), "has a name that is not UTF-8")
        })?;
        names.push(name);
    }
    Ok(names)
}

/// Whether `dir` exists; it must be a real directory of the agent's user that no one else can
/// write.
fn directory(host: &Host, dir: &Path) -> Result<bool, JournalError> {
    match stat(host, dir)? {
        None => Ok(false),
        Some(meta) if meta.kind == FileKind::Directory => {
            trusted(host, dir, &meta)?;
            Ok(true)
        }
        Some(meta) => Err(JournalError::new(
            dir,
            format!(
                "is {}, not a directory: the journal is never read through a link",
                kind(meta.kind)
            ),
        )),
    }
}

fn stat(host: &Host, path: &Path) -> Result<Option<Metadata>, JournalError> {
    host.fs
        .lstat(path)
        .map_err(|e| JournalError::new(path, e.to_string()))
}

fn kind(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Regular => "a regular file",
        FileKind::Directory => "a directory",
        FileKind::Symlink => "a symbolic link",
        FileKind::Other => "a special file",
    }
}

/// Owned by the agent's user, writable by no one else.
fn trusted(host: &Host, path: &Path, meta: &Metadata) -> Result<(), JournalError> {
    let owner = host.file_owner().uid;
    if meta.uid != owner {
        return Err(JournalError::new(
            path,
            format!(
                "belongs to uid {}, not {owner}: not written by this agent",
                meta.uid
            ),
        ));
    }
    if meta.mode & 0o022 != 0 {
        return Err(JournalError::new(
            path,
            format!("mode {:04o} lets others write it", meta.mode),
        ));
    }
    Ok(())
}

/// A journal file: regular, trusted, bounded, and exactly the schema.
fn json<T: DeserializeOwned>(host: &Host, file: &Path) -> Result<T, JournalError> {
    match stat(host, file)? {
        None => return Err(JournalError::new(file, "is missing")),
        Some(meta) if meta.kind != FileKind::Regular => {
            return Err(JournalError::new(
                file,
                format!("is {}, not a regular file", kind(meta.kind)),
            ))
        }
        Some(meta) => trusted(host, file, &meta)?,
    }
    let bytes = host
        .fs
        .read(file)
        .map_err(|e| JournalError::new(file, e.to_string()))?
        .ok_or_else(|| JournalError::new(file, "is missing"))?;
    serde_json::from_slice(&bytes).map_err(|e| JournalError::new(file, e.to_string()))
}

/// The values of a record, beyond its shape.
fn check_record(record: &Record, seq: u32) -> Result<(), String> {
    if record.seq != seq {
        return Err(format!("says it is record {}, not {seq}", record.seq));
    }
    if control_id(&record.control).is_none() {
        return Err(format!("names no control: `{}`", record.control));
    }
    match &record.object {
        Object::File {
            path,
            before,
            after,
            created_dirs,
        } => {
            check_path(path)?;
            check_image(before)?;
            check_image(after)?;
            for dir in created_dirs {
                check_path(dir)?;
                if !Path::new(path).starts_with(dir) || dir == path {
                    return Err(format!("created_dirs: {dir} is not above {path}"));
                }
            }
        }
        Object::UnitFile { unit, .. }
        | Object::UnitEnabled { unit, .. }
        | Object::UnitActive { unit, .. }
        | Object::UnitReload { unit }
        | Object::Restart { unit } => check_unit(unit)?,
        Object::Reload | Object::AuditRulesLoaded => {}
        Object::SocketGroup { path, .. } => check_path(path)?,
        Object::KernelSetting {
            path,
            before,
            after,
            ..
        } => {
            check_path(path)?;
            if !path.starts_with("/sys/") && !path.starts_with("/proc/sys/") {
                return Err(format!(
                    "{path} is not a kernel setting under /sys or /proc/sys"
                ));
            }
            // `/proc/sys` prints several numbers separated by tabs.
            for value in [before, after] {
                if value.len() > 1024 || value.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(format!(
                        "`{}` is not a kernel setting's value",
                        value.escape_debug()
                    ));
                }
            }
        }
        Object::ModuleUnloaded { module } => {
            if module.is_empty()
                || module.len() > 64
                || !module
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!("`{}` is not a module name", module.escape_debug()));
            }
        }
    }
    Ok(())
}

/// Absolute, plain (no `.`, `..` or empty component), no NUL, bounded.
fn check_path(path: &str) -> Result<(), String> {
    let plain = path.starts_with('/')
        && path.len() <= MAX_PATH
        && !path.contains('\0')
        && !path.contains("//")
        && Path::new(path)
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
        && path != "/";
    if plain {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an absolute, plain path inside the root",
            path.escape_debug()
        ))
    }
}

fn check_image(image: &Image) -> Result<(), String> {
    match image {
        Image::Absent => Ok(()),
        Image::Symlink { target } => {
            if target.is_empty() || target.len() > MAX_PATH || target.contains('\0') {
                Err("a link target that is empty, too long or holds NUL".into())
            } else {
                Ok(())
            }
        }
        Image::Regular { mode, content, .. } => {
            if *mode > 0o7777 {
                return Err(format!("mode {mode:o} is not a file mode"));
            }
            unhex(content)
                .map(drop)
                .ok_or_else(|| "content is not lowercase hex".to_owned())
        }
    }
}

fn check_unit(unit: &str) -> Result<(), String> {
    let (stem, suffix) = unit.rsplit_once('.').unwrap_or((unit, ""));
    let named = !stem.is_empty()
        && unit.len() <= 255
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.@-\\".contains(&b))
        && ["socket", "service", "timer", "mount", "target", "path"].contains(&suffix);
    if named {
        Ok(())
    } else {
        Err(format!("`{}` is not a unit name", unit.escape_debug()))
    }
}
