//! flatcar-harden: harden a Flatcar Container Linux host from a TOML policy.

mod assets;
mod cli;
mod controls;
mod engine;
mod host;
mod policy;
mod report;

use std::io::IsTerminal;
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
                eprintln!("flatcar-harden: error: {message}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Apply {
            dry_run,
            no_validate,
            run,
        } => {
            let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
            run_controls(mode, &run, no_validate)
        }
        Command::Check { run } => run_controls(Mode::Check, &run, false),
        Command::Policy { command } => match command {
            PolicyCommand::Show { source } => show_policy(&source),
            PolicyCommand::Check { files } => check_policies(&files),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("flatcar-harden: error: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl ToString) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.to_string(),
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
    let loaded = policy::load(&host.fs, source.policy.as_deref()).map_err(Failure::usage)?;
    Ok((host, loaded))
}

fn run_controls(mode: Mode, args: &RunArgs, no_validate: bool) -> Result<u8, Failure> {
    let (mut host, loaded) = open(&args.source)?;
    host.skip_sudoers_validation = no_validate;
    for id in &args.only {
        if !controls::IDS.contains(&id.as_str()) {
            let known: Vec<String> = controls::IDS.iter().map(|s| s.to_string()).collect();
            return Err(Failure::usage(format!(
                "--only: no control `{id}`{} (controls: {})",
                policy::did_you_mean(id, &known),
                controls::IDS.join(", ")
            )));
        }
    }
    let steps: Vec<_> = controls::all(&loaded.policy)
        .into_iter()
        .filter(|step| args.only.is_empty() || args.only.iter().any(|id| id == step.id()))
        .collect();
    let _lock = engine::lock().map_err(|message| Failure { code: 1, message })?;

    let mut report = Report::new(
        mode,
        host.root().display().to_string(),
        loaded.sources.clone(),
    );
    let stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            engine::run(&host, &loaded.policy, &steps, mode, &mut |r| report.push(r));
            serde_json::to_writer_pretty(stdout, &report).map_err(|e| Failure {
                code: 1,
                message: format!("cannot write the report: {e}"),
            })?;
            println!();
        }
        Format::Text => {
            // Diffs are what a dry run is for; apply shows them too, check only names the files.
            let mut text = TextWriter::new(stdout, mode != Mode::Check);
            let _ = text.header(&report);
            engine::run(&host, &loaded.policy, &steps, mode, &mut |r| {
                let _ = text.control(&r);
                report.push(r);
            });
            let _ = text.footer(&report);
        }
    }
    Ok(report.exit_code() as u8)
}

fn show_policy(source: &SourceArgs) -> Result<u8, Failure> {
    let (_, loaded) = open(source)?;
    print!("{}", policy::to_toml(&loaded));
    Ok(0)
}

fn check_policies(files: &[std::path::PathBuf]) -> Result<u8, Failure> {
    let mut code = 0;
    for file in files {
        let shown = file.display().to_string();
        let checked = std::fs::read(file)
            .map_err(|e| format!("cannot read policy {shown}: {e}"))
            .and_then(|bytes| policy::parse_file(&shown, &bytes).map_err(|e| e.to_string()));
        match checked {
            Ok(_) => println!("{shown}: ok"),
            Err(message) => {
                eprintln!("flatcar-harden: error: {message}");
                code = EXIT_USAGE;
            }
        }
    }
    Ok(code)
}
