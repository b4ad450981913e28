//! The command line (clap derive). The contract — commands, options, exit codes — is documented
//! in docs/cli.md; later controls and operators' scripts rely on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "flatcar-harden",
    version,
    about = "Harden a Flatcar Container Linux host from a TOML policy",
    after_help = "Exit codes: 0 success or compliant, 1 a control failed, 2 usage or policy error \
                  (nothing changed), 3 check found drift."
)]
pub struct Cli {
    /// More log output on stderr (-v: a line per step with timings, -vv: debug). RUST_LOG wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the host in line with the policy (with --dry-run: show what would change).
    Apply {
        /// Write nothing; print the diff of every file and every runtime action that apply would do.
        #[arg(long)]
        dry_run: bool,
        /// Write sudoers files even when visudo is missing (an image build machine without sudo);
        /// without it, such a write fails rather than go unvalidated.
        #[arg(long)]
        no_validate: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Audit only: report drift from the policy, change nothing (exit 3 on drift).
    Check {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show or validate policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the effective policy (built-in default merged with the policy files) as TOML.
    Show {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Validate policy files on their own; exit 2 with the file, line and column of any error.
    Check {
        /// Policy files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Use this policy file instead of /usr/share/flatcar-harden/policy.toml,
    /// /etc/flatcar-harden/policy.toml and /etc/flatcar-harden/policy.d/*.toml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Work on the system under DIR (an image being built) instead of the running host. Runtime
    /// state (loaded modules, services) is only changed when DIR is /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Only these controls (comma-separated ids: sshd-socket, docker-socket, core-sudo,
    /// core-login, usb-storage, smt, selinux, etcd-locksmith-tls).
    #[arg(long, value_name = "ID[,ID...]", value_delimiter = ',')]
    pub only: Vec<String>,

    /// Output format on stdout; logs always go to stderr. junit: one testcase per control, for
    /// image pipelines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write the results as Prometheus metrics to FILE (for node_exporter's textfile
    /// collector), replacing it atomically; wins over `[report] metrics_file`. A path on this
    /// machine, never under --root. --dry-run writes none.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
}
