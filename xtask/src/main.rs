//! `cargo xtask`: build-time tasks of flatcar-harden that need the agent's source but must not
//! ship in its binary. Today one: `cargo xtask assets DIR`, man pages and shell completions.

mod assets;
// The agent's command line definition itself, compiled here too, so that the pages and
// completions describe exactly the CLI the agent parses. Only `Cli::command()` is used here,
// hence the allowance for the fields only the agent reads.
#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask assets DIR | version

  assets DIR   write the man pages (DIR/share/man/man8) and the bash, zsh and fish completions
               (DIR/share/bash-completion/completions, DIR/share/zsh/site-functions,
               DIR/share/fish/vendor_completions.d) generated from src/cli.rs; DIR is the usr of
               a tree being built (the sysext uses $tree/usr). The files written are listed on
               stdout.
  version      print the version of the agent (the workspace's), e.g. for the sysext's name.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["assets", dir] if !dir.starts_with('-') => match assets::generate(dir.as_ref()) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("xtask: error: {message}");
                ExitCode::FAILURE
            }
        },
        ["version"] => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
