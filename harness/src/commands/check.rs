//! `fissure check`: load a history in any supported format and check it for linearizability
//! (transactional histories go to [`super::check_txn`]).

use super::check_output;
use super::history_file;
use crate::cli::CheckArgs;
use crate::sizes::default_memory_limit;
use crate::{EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};
use anyhow::{anyhow, Context};
use checkers::linearizability::{CheckError, Progress};
use checkers::{check_model, CheckOptions, History, ModelKind, Operation, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// History files at least this large (about a thousand operations) start the search's thread pool
/// before they are parsed.
const WARM_UP_BYTES: u64 = 128 * 1024;

/// What was checked, how: printed beside the result.
pub struct Setup {
    pub init: Value,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    // A run `fissure run` stored knows its own checkers, unless told otherwise.
    if super::recheck::is_stored_run(&args.history) && args.model.is_none() && args.format.is_none()
    {
        return super::recheck::run(&args);
    }
    // A transactional JSON Lines history is read straight into transactions.
    if let Some((source, history)) = super::check_txn::read_streaming(&args)? {
        return super::check_txn::run(&args, &source, history);
    }
    // A large history will want the search's thread pool once its first round (on this thread)
    // is over: start it now, while the file is read and parsed. A small one never needs it, and
    // idle pool threads would only take CPU from it.
    if std::fs::metadata(&args.history).is_ok_and(|m| m.len() >= WARM_UP_BYTES) {
        checkers::linearizability::warm_up();
    }
    let loaded = history_file::load(&args.history, args.format)?;
    let path = loaded.path.display().to_string();
    let ops = loaded
        .history
        .operations()
        .map_err(|e| anyhow!("{path}: {e}"))?;
    if super::check_txn::applies(&args, &ops) {
        let source = super::check_txn::Source::of(&loaded);
        let history = super::check_txn::read_operations(&args, &source, &ops)?;
        // The events and operations are not needed to check the transactions.
        drop(ops);
        drop(loaded);
        return super::check_txn::run(&args, &source, history);
    }
    let conventions = loaded.format.conventions();
    let model = match args.model.or(conventions.model) {
        Some(model) => model,
        // With no client operation any model will do: there is nothing to check against it.
        None if ops.is_empty() => ModelKind::Register,
        None => guess_model(&ops).with_context(|| format!("{path}: cannot guess a model"))?,
    };
    let init = match &args.init {
        Some(raw) => parse_init(raw),
        // A source's initial value belongs to its own model (Knossos' 0 is a register's), so a
        // different model starts from its natural default.
        None if same_object(conventions.model, model) => {
            conventions.init.clone().unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    let progress = Arc::new(Progress::default());
    let options = CheckOptions {
        failures: args.fail_means.unwrap_or(conventions.failures),
        split_by_key: !args.no_split,
        time_limit: (!args.time_limit.is_zero()).then_some(args.time_limit),
        memory_limit: Some(args.memory_limit.map_or_else(default_memory_limit, |m| m.0)),
        shrink: !args.no_shrink,
        progress: progress.clone(),
    };
    tracing::info!(%path, format = %loaded.format, %model, ops = ops.len(), "checking");

    let display = ProgressDisplay::start(progress);
    let checked = check_model(model, &init, &ops, &options);
    display.stop();
    let result = checked.map_err(|e| explain_check_error(e, &loaded.history, &ops, &path))?;

    let setup = Setup { init };
    if args.json {
        println!("{}", check_output::json(&loaded, &setup, &result));
    } else {
        print!("{}", check_output::summary(&loaded, &setup, &result));
    }
    Ok(match result.valid {
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid => EXIT_INVALID,
        Verdict::Unknown => EXIT_UNKNOWN,
    })
}

/// True if `model` checks the same kind of object as the format's conventional model.
fn same_object(conventional: Option<ModelKind>, model: ModelKind) -> bool {
    let register = |m: ModelKind| matches!(m, ModelKind::Register | ModelKind::CasRegister);
    match conventional {
        Some(c) => c == model || (register(c) && register(model)),
        None => false,
    }
}

fn guess_model(ops: &[Operation]) -> anyhow::Result<ModelKind> {
    ModelKind::guess_from_ops(ops).ok_or_else(|| {
        let mut fs: Vec<&str> = ops.iter().map(|o| o.f.as_str()).collect();
        fs.sort_unstable();
        fs.dedup();
        anyhow!(
            "no built-in model has the functions {}; pass --model",
            fs.join(", ")
        )
    })
}

/// `--init 0`, `--init '"x"'`, `--init '[1,2]'` are JSON; anything else (`--init abc`, `--init ""`)
/// is taken as a string.
fn parse_init(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Turns a model's complaint about an operation into one that names the file and line.
fn explain_check_error(
    e: CheckError,
    history: &History,
    ops: &[Operation],
    path: &str,
) -> anyhow::Error {
    match e {
        CheckError::Model(m) => match ops.get(m.op) {
            Some(op) => anyhow!(
                "{path}: {}: {} (try --model)",
                history.locate(op.call),
                m.message
            ),
            None => anyhow!("{path}: {m}"),
        },
        other => anyhow!("{other} (see --init)"),
    }
}

/// A progress line on stderr for checks that take a while; silent for quick ones and when stderr
/// is not a terminal.
struct ProgressDisplay {
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    fn start(progress: Arc<Progress>) -> ProgressDisplay {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut bar: Option<ProgressBar> = None;
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(100));
                if started.elapsed() < Duration::from_millis(400) {
                    continue;
                }
                let bar = bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(0);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} checking: {pos}/{len} partitions done, {msg} [{elapsed}]",
                        )
                        .expect("valid template"),
                    );
                    bar
                });
                bar.set_length(progress.partitions_total.load(Ordering::Relaxed) as u64);
                bar.set_position(progress.partitions_done.load(Ordering::Relaxed) as u64);
                bar.set_message(format!(
                    "{:.1} M steps, ~{} MiB",
                    progress.steps.load(Ordering::Relaxed) as f64 / 1e6,
                    progress.memory.load(Ordering::Relaxed) >> 20
                ));
                bar.tick();
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        ProgressDisplay {
            done,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
