//! flatcar-harden: harden a Flatcar Container Linux host from a TOML policy.

mod assets;
mod cli;
mod controls;
mod engine;
mod host;
mod journal;
mod policy;
mod report;
mod terminal;
mod undo;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, Format, PolicyCommand, RunArgs, SourceArgs};
use host::Host;
use report::{Mode, Report, TextWriter};

/// Usage or policy error: nothing was changed.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // Packaging's entry point for man pages and completions; not a command of the CLI.
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|arg| arg == assets::COMMAND) {
        return match assets::main(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                Failure::usage(message).print();
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Apply {
            dry_run,
            confirm_within,
            boot,
            run,
        } => {
            let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
            let journal = undo::ApplyJournal {
                confirm_within,
                boot,
            };
            run_controls(mode, &run, &journal)
        }
        Command::Check { run } => run_controls(Mode::Check, &run, &undo::ApplyJournal::default()),
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
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
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

fn run_controls(mode: Mode, args: &RunArgs, journal: &undo::ApplyJournal) -> Result<u8, Failure> {
    let (host, loaded) = open(&args.source)?;
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
    let mut code = write_report(
        &host,
        &loaded.policy,
        &steps,
        &mut report,
        args.format,
        |report| {
            report.journal = undo::journal_ref(&host);
        },
    )?;
    if mode == Mode::Apply {
        code = code.max(prepared.code);
    }
    Ok(code)
}

/// Runs `steps` and writes the report as the controls finish; `finish` completes the report
/// before its footer. A report that cannot be written is a failed run (exit 1), though every
/// control ran.
fn write_report(
    host: &Host,
    policy: &policy::Policy,
    steps: &[Box<dyn controls::Step>],
    report: &mut Report,
    format: Format,
    finish: impl FnOnce(&mut Report),
) -> Result<u8, Failure> {
    let mode = report.mode;
    let stdout = std::io::stdout().lock();
    let written = match format {
        Format::Json => {
            engine::run(host, policy, steps, mode, &mut |r| report.push(r));
            finish(report);
            write_json(stdout, report)
        }
        Format::Text => {
            // Diffs are what a dry run is for; apply shows them too, check only names the files.
            let mut text = TextWriter::new(stdout, mode != Mode::Check);
            text.header(report);
            engine::run(host, policy, steps, mode, &mut |r| {
                text.control(&r);
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
