//! Writes a synthetic list-append history as `history.jsonl` (see `checkers::txn::synth`), for
//! timing `fissure check` or trying the isolation checker on something large.
//!
//! `cargo run --release -p checkers --example txn_history -- --txns 100000 [--processes 20]
//! [--seed 1] [--g-single] [--out history.jsonl]`; without `--out` it writes to stdout. The planted
//! G-single's transactions are named on stderr.

use checkers::txn::synth::{list_append_events, SynthOptions};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: txn_history [--txns N] [--processes C] [--active-keys K] \
                     [--appends-per-key A] [--seed S] [--g-single] [--out PATH]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("txn_history: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut options = SynthOptions::default();
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{name} {value:?}: not a whole number"))
        };
        match arg.as_str() {
            "--txns" => options.txns = number("--txns")? as usize,
            "--processes" => options.processes = number("--processes")?.max(1) as usize,
            "--active-keys" => options.active_keys = number("--active-keys")? as usize,
            "--appends-per-key" => options.appends_per_key = number("--appends-per-key")? as usize,
            "--seed" => options.seed = number("--seed")?,
            "--g-single" => options.g_single = true,
            "--out" => out = Some(args.next().ok_or("--out needs a path")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(File::create(path).map_err(|e| format!("{path}: {e}"))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    let mut failure: Option<io::Error> = None;
    let planted = list_append_events(&options, |event| {
        if failure.is_none() {
            let written = serde_json::to_writer(&mut sink, &event)
                .map_err(io::Error::from)
                .and_then(|()| sink.write_all(b"\n"));
            failure = written.err();
        }
    });
    if let Some(e) = failure.or_else(|| sink.flush().err()) {
        return Err(format!("writing the history: {e}"));
    }
    if let Some(p) = planted {
        eprintln!(
            "planted G-single: T{} appended to keys {} and {}; T{} read key {} without it and \
             key {} with it",
            p.writer, p.stale_key, p.seen_key, p.reader, p.stale_key, p.seen_key
        );
    }
    Ok(())
}
