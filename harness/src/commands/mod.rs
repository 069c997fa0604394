//! One module per subcommand.

pub mod check;
mod check_output;
mod cluster;
mod convert;
mod doctor;
mod history_file;
mod recheck;
pub mod report;
pub mod run;
mod run_output;
mod target;

use crate::cli::{Cli, Command};

/// The async runtime of a command that needs one.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Check(args) => check::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Campaign(args) => campaign(args),
        Command::Report(args) => report::report(args),
        Command::Serve(args) => report::serve(args),
        Command::Cluster { action } => cluster::run(action),
        Command::Heal(args) => cluster::heal(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Target { action } => target::run(action),
        Command::Image { action } => cluster::image(action),
        Command::Links { config, faults } => {
            runtime()?.block_on(nuclei::link::daemon::run_from_files(&config, &faults))?;
            Ok(crate::EXIT_VALID)
        }
        Command::Node { .. } => {
            anyhow::bail!("`fissure node` runs in its own process (crate::main)")
        }
    }
}

/// `fissure campaign`.
fn campaign(args: crate::cli::CampaignArgs) -> anyhow::Result<u8> {
    let campaign = crate::campaign::Campaign::load(&args.file, args.store.as_deref())?;
    if args.list {
        for run in &campaign.runs {
            println!("{}  expect {}", run.name, run.expect.name());
        }
        return Ok(crate::EXIT_VALID);
    }
    if args.parallel == 0 {
        anyhow::bail!("--parallel must be 1 or more");
    }
    crate::campaign::execute::run(
        campaign,
        crate::campaign::execute::Options {
            parallel: args.parallel,
            junit: args.junit,
        },
    )
}
