//! Running a campaign: each run is a `fissure run --spec <file>` child process (so runs are
//! isolated, can go side by side with `--parallel`, and a crash ends one run, not the
//! campaign), with an overall progress bar, a summary table, the store's index refreshed and a
//! JUnit XML file.
//!
//! Exit codes: 0 when every run met its expectation, 1 when any missed, 3 on an error.

use super::record::{self, CampaignRecord, RunRecord};
use super::shard::Shard;
use super::{Campaign, Expect, PlannedRun};
use anyhow::Context;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How `fissure campaign` runs.
pub struct Options {
    /// Runs at once (local and docker clusters made per run allow several).
    pub parallel: usize,
    pub junit: Option<PathBuf>,
    /// The slice of the campaign these runs are (`Shard::WHOLE` unless `--shard`).
    pub shard: Shard,
    /// Every run of the whole campaign, when `campaign.runs` holds one shard of it.
    pub planned: Vec<String>,
}

/// What became of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run: PlannedRun,
    /// `fissure run`'s exit code (None: it could not be started or was killed).
    pub code: Option<i32>,
    pub verdict: String,
    pub reason: String,
    pub slo: String,
    pub dir: Option<PathBuf>,
    pub seconds: f64,
    pub met: bool,
    pub log: PathBuf,
}

/// Whether exit `code` meets `expect` (4 is "safe, but an SLO was breached").
pub fn meets(expect: Expect, code: Option<i32>) -> bool {
    matches!(
        (expect, code),
        (Expect::Valid, Some(0)) | (Expect::Invalid, Some(1)) | (Expect::Any, Some(0 | 1 | 2 | 4))
    )
}

fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Runs one planned run as a child process, its output kept in `log`.
fn run_one(program: &Path, run: &PlannedRun, work: &Path) -> anyhow::Result<Outcome> {
    // JSON, as a stored run's test.json: TOML cannot hold seeds above 2^63.
    let spec_file = work.join("specs").join(format!("{}.json", run.name));
    let log = work.join("logs").join(format!("{}.log", run.name));
    let json = serde_json::to_string_pretty(&serde_json::json!({ "spec": run.settings }))?;
    std::fs::write(&spec_file, json)
        .with_context(|| format!("cannot write {}", spec_file.display()))?;
    // The run's folder is the one `latest` points at afterwards, if the run moved it: a run
    // that failed before recording anything leaves an older run's link in place.
    let latest = run.spec.store.join(&run.name).join("latest");
    let before = std::fs::canonicalize(&latest).ok();
    let output =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let started = Instant::now();
    let status = Command::new(program)
        .arg("run")
        .arg("--spec")
        .arg(&spec_file)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .status()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let dir = std::fs::canonicalize(&latest)
        .ok()
        .filter(|d| Some(d) != before.as_ref());
    let results = dir
        .as_ref()
        .map(|d| read_json(&d.join("results.json")))
        .unwrap_or(Value::Null);
    let verdict = match (&results["valid"], status.code()) {
        (Value::Bool(true), _) => "valid",
        (Value::Bool(false), _) => "invalid",
        (_, Some(3) | None) => "error",
        _ => "unknown",
    };
    let reason = match results["reason"].as_str() {
        Some(reason) => reason.to_string(),
        None => last_error(&log),
    };
    let slo = results["slo"]["verdict"]
        .as_str()
        .unwrap_or("-")
        .to_string();
    Ok(Outcome {
        met: meets(run.expect, status.code()),
        run: run.clone(),
        code: status.code(),
        verdict: verdict.into(),
        reason,
        slo,
        dir,
        seconds,
        log,
    })
}

/// The last `error:` line of a run's output (why it stopped without results).
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("no results: see the run's log")
        .to_string()
}

impl Outcome {
    fn record(&self, store: &Path) -> RunRecord {
        let relative = |p: &Path| p.strip_prefix(store).unwrap_or(p).to_path_buf();
        let dir = self.dir.as_deref().map(|d| {
            let store = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
            d.strip_prefix(&store).unwrap_or(d).to_path_buf()
        });
        RunRecord {
            name: self.run.name.clone(),
            label: self.run.label.clone(),
            target: self.run.spec.def.name.clone(),
            expect: self.run.expect,
            verdict: self.verdict.clone(),
            code: self.code,
            met: self.met,
            seconds: record::seconds(Duration::from_secs_f64(self.seconds)),
            reason: self.reason.clone(),
            slo: self.slo.clone(),
            dir,
            log: relative(&self.log),
        }
    }
}

/// Runs every run of `campaign` and reports; returns the exit code.
pub fn run(campaign: Campaign, options: Options) -> anyhow::Result<u8> {
    let started = Instant::now();
    let store = campaign.runs[0].spec.store.clone();
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace([':', '-'], "");
    let shard_suffix = if options.shard == Shard::WHOLE {
        String::new()
    } else {
        format!("-shard{}of{}", options.shard.index, options.shard.count)
    };
    let work = store
        .join("campaigns")
        .join(format!("{}-{stamp}{shard_suffix}", campaign.name));
    for sub in ["specs", "logs"] {
        std::fs::create_dir_all(work.join(sub))
            .with_context(|| format!("cannot create {}", work.join(sub).display()))?;
    }
    // Held open, so a rebuild during a long campaign cannot swap the binary under it.
    let program = crate::commands::run::held_binary()?;
    let total = campaign.runs.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} runs · {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let queue = Arc::new(Mutex::new(
        campaign.runs.iter().cloned().collect::<VecDeque<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    watch_interrupt(stop.clone());
    let (done_tx, done_rx) = mpsc::channel();
    let mut workers = Vec::new();
    for _ in 0..options.parallel.clamp(1, total) {
        let (queue, stop, done, program, work) = (
            queue.clone(),
            stop.clone(),
            done_tx.clone(),
            program.clone(),
            work.clone(),
        );
        workers.push(std::thread::spawn(move || loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Some(next) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                break;
            };
            tracing::info!(run = %next.name, "campaign run starting");
            let outcome = run_one(&program, &next, &work).map_err(|e| (next, e));
            if done.send(outcome).is_err() {
                break;
            }
        }));
    }
    drop(done_tx);
    let mut outcomes = Vec::new();
    let mut missed = 0;
    for outcome in done_rx {
        match outcome {
            Ok(outcome) => {
                if !outcome.met {
                    missed += 1;
                    let line = format!(
                        "MISSED {}: expected {}, got {} ({})",
                        outcome.run.name,
                        outcome.run.expect.name(),
                        outcome.verdict,
                        outcome.reason
                    );
                    bar.suspend(|| eprintln!("{line}"));
                }
                outcomes.push(outcome);
            }
            Err((run, e)) => {
                bar.suspend(|| eprintln!("ERROR {}: {e:#}", run.name));
                missed += 1;
                outcomes.push(Outcome {
                    met: false,
                    code: None,
                    verdict: "error".into(),
                    reason: format!("{e:#}"),
                    slo: "-".into(),
                    dir: None,
                    seconds: 0.0,
                    log: work.join("logs").join(format!("{}.log", run.name)),
                    run,
                });
            }
        }
        bar.inc(1);
        bar.set_message(format!(
            "{} as expected, {missed} missed",
            outcomes.len() - missed.min(outcomes.len())
        ));
    }
    for worker in workers {
        let _ = worker.join();
    }
    bar.finish_and_clear();
    outcomes.sort_by_key(|o| {
        campaign
            .runs
            .iter()
            .position(|r| r.name == o.run.name)
            .unwrap_or(usize::MAX)
    });
    let interrupted = stop.load(Ordering::SeqCst);
    let record = CampaignRecord {
        campaign: campaign.name.clone(),
        shard: options.shard,
        planned: if options.planned.is_empty() {
            campaign.runs.iter().map(|r| r.name.clone()).collect()
        } else {
            options.planned.clone()
        },
        runs: outcomes.iter().map(|o| o.record(&store)).collect(),
        not_run: campaign
            .runs
            .iter()
            .filter(|r| !outcomes.iter().any(|o| o.run.name == r.name))
            .map(|r| r.name.clone())
            .collect(),
        started: humantime::format_rfc3339_seconds(now).to_string(),
        seconds: record::seconds(started.elapsed()),
    };
    record.write(&work)?;
    let summary = record.summary();
    print!("{summary}");
    std::fs::write(work.join("summary.txt"), &summary)?;
    let junit = record.junit(&store);
    std::fs::write(work.join("junit.xml"), &junit)?;
    if let Some(path) = &options.junit {
        std::fs::write(path, &junit)
            .with_context(|| format!("cannot write the JUnit file {}", path.display()))?;
        println!("JUnit: {}", path.display());
    }
    if let Err(e) = reports::index::write(&store) {
        tracing::warn!("the store index: {e:#}");
    }
    println!(
        "index: {}  ·  specs and logs: {}",
        store.join("index.html").display(),
        work.display()
    );
    Ok(record.exit_code(interrupted))
}

/// Stops handing out runs on Ctrl-C; the runs under way get the signal too and stop cleanly.
fn watch_interrupt(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            eprintln!("\ninterrupted: finishing the runs under way, starting no more");
            stop.store(true, Ordering::SeqCst);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_follow_exit_codes() {
        assert!(meets(Expect::Valid, Some(0)));
        assert!(
            !meets(Expect::Valid, Some(4)),
            "an SLO breach misses a valid expectation"
        );
        assert!(!meets(Expect::Valid, Some(2)));
        assert!(meets(Expect::Invalid, Some(1)));
        assert!(!meets(Expect::Invalid, Some(0)));
        assert!(meets(Expect::Any, Some(2)));
        assert!(!meets(Expect::Any, Some(3)));
        assert!(!meets(Expect::Any, None));
    }
}
