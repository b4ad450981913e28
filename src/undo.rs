//! The journal's commands — `revert`, `runs`, `confirm` — and what `apply` does with the journal
//! around its controls: runs past their confirmation deadline reverted first, held controls
//! left alone, the recorder installed for the executor.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use tracing::{info, warn};

use crate::cli::{Format, RevertArgs};
use crate::controls::Step;
use crate::host::Host;
use crate::journal::confirm::{self, Confirmed, HeldStep};
use crate::journal::read;
use crate::journal::record::Object;
use crate::journal::{self, revert, RunMeta, RunState, RUNS_DIR};
use crate::policy::Policy;
use crate::report::{JournalRef, Mode, Report, Status};
use crate::{terminal, write_json, write_report, Failure, Stream};

/// What `apply` was asked about the journal.
#[derive(Debug, Default)]
pub struct ApplyJournal {
    pub confirm_within: Option<String>,
    pub boot: bool,
}

/// The journal's verdict before the controls run.
pub struct Prepared {
    held: Vec<(&'static str, RunMeta)>,
    /// The worst exit code of the reverts done first.
    pub code: u8,
}

impl Prepared {
    /// `step`, or in its place a step that reports it `held`.
    pub fn hold(&self, step: Box<dyn Step>) -> Box<dyn Step> {
        match self.held.iter().find(|(id, _)| *id == step.id()) {
            Some((id, run)) => Box::new(HeldStep {
                id,
                title: step.title(),
                run: run.clone(),
            }),
            None => step,
        }
    }
}

/// Before the controls: for an apply, revert the runs whose deadline passed, re-arm (at boot) or
/// refuse (by hand) while one is still ahead, release held controls (by hand), and install the
/// recorder; for every mode, find the held controls.
pub fn prepare(
    host: &Host,
    policy: &Policy,
    mode: Mode,
    asked: &ApplyJournal,
    format: Format,
) -> Result<Prepared, Failure> {
    let mut code = 0;
    if mode == Mode::Apply {
        let window = asked
            .confirm_within
            .as_deref()
            .map(journal::parse_duration)
            .transpose()
            .map_err(|e| Failure::usage(format!("--confirm-within: {e}")))?;
        if window.is_some() && !host.is_live() {
            return Err(Failure::usage(
                "--confirm-within only works on the running system: an image has no timer to \
                 arm (leave out --root)",
            ));
        }
        let (expired, ahead) = confirm::awaiting(host).map_err(Failure::usage)?;
        // A run whose confirmation can no longer come is reverted, as its deadline would have.
        let revert_unconfirmed = |id: &str| revert_run(host, id, &RevertOptions::deadline(format));
        for meta in expired {
            info!(
                "run {}: its confirmation deadline passed; reverting it",
                meta.id
            );
            code = code.max(revert_unconfirmed(&meta.id)?);
        }
        for meta in ahead {
            let by = meta.deadline.map(journal::utc).unwrap_or_default();
            if !asked.boot {
                return Err(Failure::runtime(format!(
                    "run {0} awaits confirmation until {by}: `flatcar-harden confirm {0}` keeps \
                     it, `flatcar-harden revert {0}` undoes it; apply again after that",
                    meta.id
                )));
            }
            // The timer did not survive the reboot; without one, fail closed: revert now.
            if let Err(error) = confirm::arm(host, &meta) {
                warn!(
                    "run {}: cannot arm its timer again ({error}); reverting it now",
                    meta.id
                );
                code = code.max(revert_unconfirmed(&meta.id)?);
            }
        }
        if !asked.boot {
            let released = confirm::release(host).map_err(|e| Failure::usage(e.to_string()))?;
            for id in released {
                info!("run {id}: its held controls are applied again (apply by hand)");
            }
        }
        let command: Vec<String> = std::env::args().collect();
        let mut recorder = journal::Recorder::new(
            terminal::escape(&command.join(" ")).into_owned(),
            policy.journal.keep.0 as usize,
        );
        if let Some(window) = window {
            recorder = recorder.confirm_within(window, Box::new(confirm::arm));
        }
        host.journal.replace(Some(recorder));
    }
    let held = confirm::held(host).map_err(Failure::usage)?;
    Ok(Prepared { held, code })
}

/// The journal entry an apply wrote, for its report.
pub fn journal_ref(host: &Host) -> Option<JournalRef> {
    let journal = host.journal.borrow();
    let run = journal.as_ref()?.run()?;
    Some(JournalRef {
        run: run.id.clone(),
        confirm_by: run.deadline.map(journal::utc),
    })
}

struct RevertOptions {
    only: Vec<String>,
    force: bool,
    dry_run: bool,
    deadline: bool,
    format: Format,
}

impl RevertOptions {
    fn deadline(format: Format) -> RevertOptions {
        RevertOptions {
            only: Vec::new(),
            force: false,
            dry_run: false,
            deadline: true,
            format,
        }
    }
}

/// `flatcar-harden revert`.
pub fn revert(args: &RevertArgs) -> Result<u8, Failure> {
    let host = Host::open(&args.root).map_err(Failure::usage)?;
    crate::check_only(&args.only)?;
    let _lock = crate::host::locks::run_lock().map_err(Failure::runtime)?;
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => read::last_id(&host)
            .map_err(Failure::usage)?
            .ok_or_else(|| {
                Failure::usage(format!(
                    "there is no run to revert: {RUNS_DIR} under {} has none",
                    host.root().display()
                ))
            })?,
    };
    revert_run(
        &host,
        &id,
        &RevertOptions {
            only: args.only.clone(),
            force: args.force,
            dry_run: args.dry_run,
            deadline: args.deadline,
            format: args.format,
        },
    )
}

fn revert_run(host: &Host, id: &str, options: &RevertOptions) -> Result<u8, Failure> {
    let run = read::load(host, id).map_err(Failure::usage)?;
    if options.deadline && run.meta.state != RunState::AwaitingConfirmation {
        info!(
            "run {id} is {}: nothing to revert at its deadline",
            run.meta.state.as_str()
        );
        return Ok(0);
    }
    let steps = revert::steps(&run, &options.only, options.force);
    let mode = if options.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let mut report = Report::new(mode, host.root().display().to_string(), Vec::new());
    report.reverts = Some(id.to_owned());
    // A revert at a deadline runs ahead of an apply whose report is stdout's one JSON or JUnit
    // document: it reports as text on stderr then (and to the journal, as every run does).
    let output = if options.deadline && options.format != Format::Text {
        (Format::Text, Stream::Stderr)
    } else {
        (options.format, Stream::Stdout)
    };
    let code = write_report(
        host,
        &Policy::default(),
        &steps,
        &mut report,
        output,
        |_| {},
    )?;
    if mode == Mode::Apply {
        let complete = options.only.is_empty() && report.count(Status::Failed) == 0;
        let state = match run.meta.state {
            // At the deadline the controls are held even if some could not be put back.
            RunState::AwaitingConfirmation if options.deadline => Some(RunState::Held),
            RunState::AwaitingConfirmation | RunState::Applied | RunState::Confirmed
                if complete =>
            {
                Some(RunState::Reverted)
            }
            _ => None,
        };
        if run.meta.state == RunState::AwaitingConfirmation && !options.deadline && complete {
            // Reverted by hand before its deadline: its timer has nothing left to do.
            if let Err(error) = confirm::disarm(host, id) {
                warn!("run {id}: cannot stop its timer: {error}");
            }
        }
        if let Some(state) = state {
            confirm::set_state(host, &run.meta, state)
                .map_err(|e| Failure::runtime(format!("reverted, but {e}")))?;
        }
    }
    Ok(code)
}

/// One run as `runs` lists it.
#[derive(Serialize)]
struct Listed {
    id: String,
    started: String,
    command: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm_by: Option<String>,
    controls: Vec<&'static str>,
    changes: Vec<String>,
}

/// `flatcar-harden runs`.
pub fn runs(root: &Path, format: Format) -> Result<u8, Failure> {
    if format == Format::Junit {
        return Err(Failure::usage(
            "runs prints text or json; --format junit is for apply, check and revert",
        ));
    }
    let host = Host::open(root).map_err(Failure::usage)?;
    let mut listed = Vec::new();
    for meta in read::runs(&host).map_err(Failure::usage)? {
        let run = read::load(&host, &meta.id).map_err(Failure::usage)?;
        let mut changes: Vec<String> = Vec::new();
        for record in &run.records {
            let line = format!("{}: {}", record.control, changed(&record.object));
            if !changes.contains(&line) {
                changes.push(line);
            }
        }
        listed.push(Listed {
            controls: run.controls(),
            id: meta.id,
            started: journal::utc(meta.started),
            command: meta.command,
            state: meta.state.as_str(),
            confirm_by: meta.deadline.map(journal::utc),
            changes,
        });
    }
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Json => write_json(
            &mut out,
            &serde_json::json!({ "version": 1, "runs": listed }),
        ),
        Format::Text | Format::Junit => (|| {
            if listed.is_empty() {
                writeln!(out, "no runs in {RUNS_DIR} under {}", root.display())?;
            }
            for run in &listed {
                let state = match (&run.confirm_by, run.state) {
                    (Some(by), "awaiting-confirmation") => format!("{} until {by}", run.state),
                    _ => run.state.to_owned(),
                };
                writeln!(
                    out,
                    "{}  {}  {}  {}",
                    run.id,
                    run.started,
                    state,
                    terminal::escape(&run.command)
                )?;
                for change in &run.changes {
                    writeln!(out, "    {}", terminal::escape(change))?;
                }
            }
            out.flush()
        })(),
    };
    written.map_err(|e| Failure::runtime(format!("cannot write to stdout: {e}")))?;
    Ok(0)
}

/// What a record says was changed, in a few words.
fn changed(object: &Object) -> String {
    match object {
        Object::File { path, .. } => format!("file {path}"),
        Object::UnitFile {
            unit, masked_after, ..
        } => {
            format!("{} {unit}", if *masked_after { "mask" } else { "unmask" })
        }
        Object::UnitEnabled {
            unit,
            enabled_after,
            ..
        } => {
            let word = if *enabled_after { "enable" } else { "disable" };
            format!("{word} {unit}")
        }
        Object::UnitActive {
            unit, active_after, ..
        } => {
            format!("{} {unit}", if *active_after { "start" } else { "stop" })
        }
        Object::Reload => "daemon-reload".to_owned(),
        Object::UnitReload { unit } => format!("reload {unit}"),
        Object::AuditRulesLoaded => "augenrules --load".to_owned(),
        Object::Restart { unit } => format!("restart {unit}"),
        Object::SocketGroup {
            path, gid_after, ..
        } => format!("group {gid_after} on {path}"),
        Object::KernelSetting { path, after, .. } => format!("{after} > {path}"),
        Object::ModuleUnloaded { module } => format!("unload {module}"),
    }
}

/// `flatcar-harden confirm`.
pub fn confirm(root: &Path, id: Option<&str>) -> Result<u8, Failure> {
    let host = Host::open(root).map_err(Failure::usage)?;
    let _lock = crate::host::locks::run_lock().map_err(Failure::runtime)?;
    match confirm::confirm(&host, id) {
        Ok(Confirmed::Done(message)) => {
            println!("{}", terminal::escape(&message));
            Ok(0)
        }
        Ok(Confirmed::Refused(message)) => Err(Failure::runtime(message)),
        Err(confirm::ConfirmError::Journal(e)) => Err(Failure::usage(e)),
        Err(confirm::ConfirmError::Host(e)) => Err(Failure::runtime(e)),
    }
}
