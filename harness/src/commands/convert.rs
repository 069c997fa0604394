//! `fissure convert`: rewrite a history in another format, e.g. Fissure's jsonl as EDN for
//! Knossos or Elle, or a Porcupine log as jsonl.

use super::history_file;
use crate::cli::{ConvertArgs, OutputFormat};
use crate::EXIT_VALID;
use anyhow::Context;
use checkers::formats::{write_edn, Format};
use checkers::history::write_jsonl;
use checkers::{Operation, Outcome};
use std::fs::File;
use std::io::{self, BufWriter, Write};

pub fn run(args: ConvertArgs) -> anyhow::Result<u8> {
    let loaded = history_file::load(&args.history, args.format)?;
    // Check that invocations and completions pair up before handing the history on.
    let ops = loaded
        .history
        .operations()
        .map_err(|e| anyhow::anyhow!("{}: {e}", loaded.path.display()))?;
    for warning in meaning_changes(loaded.format, args.to, &ops) {
        eprintln!("warning: {warning}");
    }
    match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write(&mut out, args.to, &loaded.history)
                .and_then(|()| out.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write(&mut out, args.to, &loaded.history)
                .and_then(|()| out.flush())
                .context("cannot write to standard output")?;
        }
    }
    Ok(EXIT_VALID)
}

/// What a reader of the output would take differently from the input, because the formats'
/// conventions differ: each with what to do about it.
fn meaning_changes(from: Format, to: OutputFormat, ops: &[Operation]) -> Vec<String> {
    let target = match to {
        OutputFormat::Edn => Format::Edn,
        OutputFormat::Jsonl => Format::Jsonl,
    };
    let (source, dest) = (from.conventions(), target.conventions());
    let mut changes = Vec::new();
    if source.failures != dest.failures && ops.iter().any(|o| o.outcome == Outcome::Fail) {
        changes.push(format!(
            "{from} reads a failed operation as {}, {target} as {}; check the output with \
             --fail-means {}",
            source.failures.name(),
            dest.failures.name(),
            source.failures.name()
        ));
    }
    // Transactions start from empty lists and unwritten registers in every format.
    let transactional = ops.iter().any(checkers::txn::is_txn_operation);
    if let Some(init) = source
        .init
        .filter(|init| dest.init.as_ref() != Some(init) && !transactional)
    {
        changes.push(format!(
            "{from} histories start from {init}, {target} ones do not; check the output with \
             --init '{init}'"
        ));
    }
    let null_reads = ops
        .iter()
        .filter(|o| matches!(o.f.as_str(), "read" | "get"))
        .filter(|o| o.outcome == Outcome::Ok && o.output.is_null())
        .count();
    if target == Format::Edn && from != Format::Edn && null_reads > 0 {
        changes.push(format!(
            "{null_reads} reads returned null; Knossos, Elle and Fissure read `:ok :read nil` in \
             EDN as an unknown value, so those reads no longer constrain the history"
        ));
    }
    changes
}

fn write(out: &mut impl Write, to: OutputFormat, history: &checkers::History) -> io::Result<()> {
    match to {
        OutputFormat::Edn => write_edn(out, history),
        OutputFormat::Jsonl => write_jsonl(out, history),
    }
}
