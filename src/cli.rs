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
    ///
    /// Every change is journaled first (/var/lib/flatcar-harden/runs under the root), so
    /// `flatcar-harden revert` can undo it.
    Apply {
        /// Write nothing; print the diff of every file and every runtime action that apply would do.
        #[arg(long)]
        dry_run: bool,
        /// Write sudoers files even when visudo is missing (an image build machine without sudo);
        /// without it, such a write fails rather than go unvalidated.
        #[arg(long)]
        no_validate: bool,
        /// Revert this run by itself after DURATION (90s, 5min, 1h; 10s to 24h) unless
        /// `flatcar-harden confirm` is run first. A systemd timer is armed before the first
        /// change (if it cannot be, nothing changes); the deadline also holds across a reboot.
        /// Over SSH, lets a change that can cut remote access go ahead without
        /// `allow_remote_lockout`. Only on the running system.
        #[arg(long, value_name = "DURATION", conflicts_with = "dry_run")]
        confirm_within: Option<String>,
        /// The boot-time run (flatcar-harden.service passes it): first revert every unconfirmed
        /// run whose deadline passed, and leave the controls such runs reverted `held`. An apply
        /// without --boot is one by hand: it lets held controls be applied again.
        #[arg(long, conflicts_with = "dry_run")]
        boot: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Audit only: report drift from the policy, change nothing (exit 3 on drift).
    Check {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Undo a run of apply from its journal.
    ///
    /// Newest change first, each object is put back as it was: bytes, mode, owner and link of
    /// files; unit masks and running state; runtime kernel settings. An object changed since
    /// the run is left alone and reported (exit 1) unless --force. Unloaded modules are not
    /// loaded back. A second revert of the same run changes nothing.
    Revert(RevertArgs),
    /// List the journal's runs: id, time, command, what changed, confirmation state.
    Runs {
        /// The system under DIR instead of the running host.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Keep a run of `apply --confirm-within`: stop its revert timer.
    ///
    /// Without RUN-ID, the newest run awaiting confirmation. Exit 1 if none awaits it or its
    /// deadline passed (confirming a run reverted at its deadline releases its held controls).
    Confirm {
        /// The run to confirm (`flatcar-harden runs` lists them).
        #[arg(value_name = "RUN-ID")]
        run_id: Option<String>,
        /// The system under DIR instead of the running host.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
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

    /// Only these controls (comma-separated ids: sshd-socket, sshd-config, sshd-listen,
    /// docker-socket, core-sudo, core-login, usb-storage, smt, sysctl, kernel-lockdown,
    /// console-autologin, selinux, auditd, etcd-locksmith-tls).
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

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["run_id", "last"]))]
pub struct RevertArgs {
    /// The run to revert (`flatcar-harden runs` lists them).
    #[arg(value_name = "RUN-ID")]
    pub run_id: Option<String>,
    /// Revert the newest run.
    #[arg(long)]
    pub last: bool,
    /// Revert just these controls of the run (comma-separated ids, as for apply --only).
    #[arg(long, value_name = "ID[,ID...]", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write nothing; print what revert would put back, with diffs.
    #[arg(long)]
    pub dry_run: bool,
    /// Put the old state back even where something changed after the run.
    #[arg(long)]
    pub force: bool,
    /// Run by the confirmation timer: revert only if the run is still unconfirmed, then hold
    /// its controls.
    #[arg(long, hide = true, conflicts_with_all = ["dry_run", "only", "last"])]
    pub deadline: bool,
    /// Work on the system under DIR (an image) instead of the running host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Output format on stdout; logs always go to stderr.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
}
