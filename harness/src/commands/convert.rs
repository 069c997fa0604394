//! `fissure convert`: rewrite a history in another format, e.g. Fissure's jsonl as EDN for
//! Knossos or Elle, or a Porcupine log as jsonl.

use super::history_file;
use crate::cli::{ConvertArgs, OutputFormat};
use crate::EXIT_VALID;
use anyhow::Context;
use checkers::formats::write_edn;
use checkers::history::write_jsonl;
use std::fs::File;
use std::io::{self, BufWriter, Write};

pub fn run(args: ConvertArgs) -> anyhow::Result<u8> {
    let loaded = history_file::load(&args.history, args.format)?;
    // Check that invocations and completions pair up before handing the history on.
    loaded
        .history
        .operations()
        .map_err(|e| anyhow::anyhow!("{}: {e}", loaded.path.display()))?;
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

fn write(out: &mut impl Write, to: OutputFormat, history: &checkers::History) -> io::Result<()> {
    match to {
        OutputFormat::Edn => write_edn(out, history),
        OutputFormat::Jsonl => write_jsonl(out, history),
    }
}
