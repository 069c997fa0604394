//! One module per subcommand.

pub mod check;
mod check_output;
mod check_txn;
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

/// Commands that only read files and print may die quietly when their reader goes away
/// (`fissure target list | head`), as Unix tools do, instead of panicking on a broken pipe.
/// Not the others: they write to sockets, where a broken pipe must be an error, not a death.
fn die_quietly_on_a_closed_stdout() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores the default action, installed before any other thread exists; no
    // handler runs Rust code.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
}

/// Runs a command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    if matches!(
        cli.command,
        Command::Target { .. } | Command::Check(_) | Command::Convert(_)
    ) {
        die_quietly_on_a_closed_stdout();
    }
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Check(args) => check::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Campaign(args) => campaign(args),
        Command::Merge(args) => {
            crate::campaign::merge::merge(&args.stores, &args.into, args.junit.as_deref())
        }
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
    use crate::campaign::shard::{self, Shard};
    let salt = args
        .shard
        .map(|_| args.seed_salt.clone().unwrap_or_default());
    let mut campaign =
        crate::campaign::Campaign::load_with(&args.file, args.store.as_deref(), salt.as_deref())?;
    let planned: Vec<String> = campaign.runs.iter().map(|r| r.name.clone()).collect();
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    if shard != Shard::WHOLE {
        campaign.runs = shard::select(std::mem::take(&mut campaign.runs), shard)?;
    }
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
            shard,
            planned,
        },
    )
}
