//! flatcar-harden: harden a Flatcar Container Linux host from a TOML policy.

mod cli;
mod controls;
mod engine;
mod host;
mod journal;
mod journal_fields;
mod junit;
mod metrics;
mod policy;
mod report;
mod terminal;
mod undo;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use cli::{Cli, Command, Format, PolicyCommand, RunArgs, SourceArgs};
use host::Host;
use report::{Mode, Report, TextWriter};

/// Usage or policy error: nothing was changed.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // Run by systemd as a generator, through a link of that name (docs/design.md).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .first()
        .and_then(|argv0| Path::new(argv0).file_name())
        .is_some_and(|name| name == controls::generator::NAME)
    {
        return controls::generator::main(&args);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Apply {
            dry_run,
            no_validate,
            confirm_within,
            boot,
            run,
        } => {
            let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
            let journal = undo::ApplyJournal {
                confirm_within,
                boot,
            };
            run_controls(mode, &run, no_validate, &journal)
        }
        Command::Check { run } => {
            run_controls(Mode::Check, &run, false, &undo::ApplyJournal::default())
        }
        Command::Revert(args) => undo::revert(&args),
        Command::Runs { root, format } => undo::runs(&root, format),
        Command::Confirm { run_id, root } => undo::confirm(&root, run_id.as_deref()),
        Command::Policy { command } => match command {
            PolicyCommand::Show { source } => show_policy(&source),
            PolicyCommand::Check { files } => check_policies(&files),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
    /// Lines printed under the message (a policy error's source line and caret).
    snippet: Vec<String>,
}

impl Failure {
    fn usage(message: impl ToString) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.to_string(),
            snippet: Vec::new(),
        }
    }

    fn runtime(message: impl ToString) -> Failure {
        Failure {
            code: 1,
            ..Failure::usage(message)
        }
    }

    /// On stderr, every line escaped: a path or value with a newline or a terminal escape in it
    /// cannot forge a line or drive the terminal.
    fn print(&self) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "flatcar-harden: error: {}",
            terminal::escape(&self.message)
        );
        for line in &self.snippet {
            let _ = writeln!(err, "{}", terminal::escape(line));
        }
    }
}

impl From<policy::PolicyError> for Failure {
    fn from(error: policy::PolicyError) -> Failure {
        Failure {
            snippet: error.snippet().to_vec(),
            ..Failure::usage(&error)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    // RUST_LOG is a list of `level` and `target=level` (e.g. `debug` or `zbus=trace,warn`): a
    // `Targets` filter, which needs no regex engine in the binary. One that does not parse is
    // ignored, as a missing one is.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|spec| !spec.trim().is_empty())
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time();
    tracing_subscriber::registry()
        .with(output)
        .with(filter)
        .init();
}

fn open(source: &SourceArgs) -> Result<(Host, policy::Loaded), Failure> {
    let host = Host::open(&source.root).map_err(Failure::usage)?;
    let loaded = policy::load(&host.fs, source.policy.as_deref())?;
    Ok((host, loaded))
}

/// `--only`'s ids, each one the registry knows.
fn check_only(only: &[String]) -> Result<(), Failure> {
    for id in only {
        if !controls::IDS.contains(&id.as_str()) {
            let known: Vec<String> = controls::IDS.iter().map(|s| s.to_string()).collect();
            return Err(Failure::usage(format!(
                "--only: no control `{id}`{} (controls: {})",
                policy::did_you_mean(id, &known),
                controls::IDS.join(", ")
            )));
        }
    }
    Ok(())
}

fn run_controls(
    mode: Mode,
    args: &RunArgs,
    no_validate: bool,
    journal: &undo::ApplyJournal,
) -> Result<u8, Failure> {
    let started = Instant::now();
    // A run that cannot read its policy leaves the metrics file as it was, and says so.
    let (mut host, loaded) = open(&args.source).map_err(|mut failure| {
        if let Some(path) = metrics::target(mode, args.metrics_file.as_deref(), None) {
            failure.message.push_str(&format!(
                " (metrics file {} left as it was)",
                path.display()
            ));
        }
        failure
    })?;
    host.skip_sudoers_validation = no_validate;
    check_only(&args.only)?;
    let _lock = host::locks::run_lock().map_err(Failure::runtime)?;
    // The journal's part: runs past their deadline reverted first, held controls, the recorder.
    let prepared = undo::prepare(&host, &loaded.policy, mode, journal, args.format)?;
    let steps: Vec<_> = controls::all(&loaded.policy)
        .into_iter()
        .filter(|step| args.only.is_empty() || args.only.iter().any(|id| id == step.id()))
        .map(|step| prepared.hold(step))
        .collect();

    let mut report = Report::new(
        mode,
        host.root().display().to_string(),
        loaded.sources.clone(),
    );
    let written = write_report(
        &host,
        &loaded.policy,
        &steps,
        &mut report,
        (args.format, Stream::Stdout),
        |report| {
            report.journal = undo::journal_ref(&host);
        },
    );
    let (mut code, failure) = match written {
        Ok(code) => (code, None),
        Err(failure) => (1, Some(failure)),
    };
    if mode == Mode::Apply {
        code = code.max(prepared.code);
    }
    // `[report] metrics_file` names a file on this machine: it counts when the policy is this
    // machine's (the live host's, or `--policy FILE`), not when it comes from an image under
    // --root, whose policy is meant for the node that boots it.
    let local_policy = host.is_live() || args.source.policy.is_some();
    let policy_metrics = match &loaded.policy.report.metrics_file {
        Some(path) if local_policy => Some(path.0.as_path()),
        Some(path) => {
            tracing::info!(
                "[report] metrics_file {} is the image's: not written (use --metrics-file)",
                path.0.display()
            );
            None
        }
        None => None,
    };
    if let Some(path) = metrics::target(mode, args.metrics_file.as_deref(), policy_metrics) {
        // The run's own result stands whatever happens to the metrics.
        let run = metrics::Run {
            report: &report,
            exit_code: code,
            finished: SystemTime::now(),
            duration: started.elapsed(),
            policy_toml: &policy::effective_toml(&loaded.policy),
        };
        if let Err(error) = write_metrics(path, &run) {
            Failure::runtime(format!("{error} (the run's result stands: exit {code})")).print();
        }
    } else if mode == Mode::DryRun && args.metrics_file.is_some() {
        tracing::warn!("--dry-run writes no metrics: --metrics-file ignored");
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(code),
    }
}

/// Runs `steps` and writes the report as the controls finish (and, under systemd, a journal
/// entry per control); `finish` completes the report before its footer. A report that cannot be
/// written is a failed run (exit 1), though every control ran.
/// Where a report goes: stdout, or stderr for one that must not join another document there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn lock(self) -> Box<dyn Write> {
        match self {
            Stream::Stdout => Box::new(std::io::stdout().lock()),
            Stream::Stderr => Box::new(std::io::stderr().lock()),
        }
    }
}

fn write_report(
    host: &Host,
    policy: &policy::Policy,
    steps: &[Box<dyn controls::Step>],
    report: &mut Report,
    (format, stream): (Format, Stream),
    finish: impl FnOnce(&mut Report),
) -> Result<u8, Failure> {
    let started = Instant::now();
    let mode = report.mode;
    let journal = journal_fields::Journal::from_env();
    let record = |r: &report::ControlReport| {
        if let Some(journal) = &journal {
            journal.record(mode, r);
        }
    };
    let written = match format {
        Format::Json | Format::Junit => {
            engine::run(host, policy, steps, mode, &mut |r| {
                record(&r);
                report.push(r)
            });
            finish(report);
            let out = stream.lock();
            if format == Format::Json {
                write_json(out, report)
            } else {
                let xml = junit::render(report, started.elapsed(), &hostname());
                write_all(out, xml.as_bytes())
            }
        }
        Format::Text => {
            // Diffs are what a dry run is for; apply shows them too, check only names the files.
            let mut text = TextWriter::new(stream.lock(), mode != Mode::Check);
            text.header(report);
            engine::run(host, policy, steps, mode, &mut |r| {
                text.control(&r);
                record(&r);
                report.push(r);
            });
            finish(report);
            text.footer(report);
            text.finish()
        }
    };
    written.map_err(|e| {
        Failure::runtime(format!(
            "cannot write the report to stdout: {e} (the run itself finished: {})",
            report.counts()
        ))
    })?;
    Ok(report.exit_code() as u8)
}

fn write_metrics(path: &Path, run: &metrics::Run) -> Result<(), metrics::MetricsError> {
    let previous = metrics::read_previous(path);
    metrics::write_atomic(path, &metrics::render(run, &previous))
}

/// The host name for JUnit's `hostname` attribute; empty when the kernel does not say.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

fn write_all(mut out: impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

fn write_json(mut out: impl Write, report: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, report)?;
    writeln!(out)?;
    out.flush()
}

fn show_policy(source: &SourceArgs) -> Result<u8, Failure> {
    let (_, loaded) = open(source)?;
    let mut out = std::io::stdout().lock();
    out.write_all(policy::to_toml(&loaded).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("cannot write the policy to stdout: {e}")))?;
    Ok(0)
}

fn check_policies(files: &[std::path::PathBuf]) -> Result<u8, Failure> {
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for file in files {
        match policy::check_file(file) {
            Ok(()) => writeln!(out, "{}: ok", terminal::escape(&file.display().to_string()))
                .and_then(|()| out.flush())
                .map_err(|e| Failure::runtime(format!("cannot write to stdout: {e}")))?,
            Err(error) => {
                Failure::from(error).print();
                code = EXIT_USAGE;
            }
        }
    }
    Ok(code)
}
