//! One module per subcommand.

pub mod check;
mod check_output;
mod convert;
mod history_file;
mod recheck;
pub mod run;
mod run_output;

use crate::cli::{Cli, Command};

/// Runs a command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Check(args) => check::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Node { .. } => {
            anyhow::bail!("`fissure node` runs in its own process (crate::main)")
        }
    }
}
