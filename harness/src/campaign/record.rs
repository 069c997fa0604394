//! `campaign.json`: what a campaign (or one shard of it) planned, ran and got, beside its specs
//! and logs in `<store>/campaigns/<name>-<stamp>/`. It is what `fissure merge` reads, and what
//! the summary table and the JUnit file are made from, so a merged campaign reports exactly as
//! one run on one machine.

use super::shard::Shard;
use super::Expect;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const FILE: &str = "campaign.json";

/// A campaign's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub campaign: String,
    pub shard: Shard,
    /// Every run of the whole campaign (all shards), in campaign order.
    pub planned: Vec<String>,
    /// This shard's runs that finished, in campaign order.
    pub runs: Vec<RunRecord>,
    /// This shard's runs that never ran (the campaign was interrupted).
    pub not_run: Vec<String>,
    /// When it started (RFC 3339) and how long it took.
    pub started: String,
    pub seconds: f64,
}

/// One run's outcome. Paths are relative to the store, so a record stays true when stores are
/// merged into another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub label: String,
    pub target: String,
    pub expect: Expect,
    pub verdict: String,
    /// `fissure run`'s exit code (None: it could not be started or was killed).
    pub code: Option<i32>,
    pub met: bool,
    pub seconds: f64,
    pub reason: String,
    pub slo: String,
    /// The run's folder (`<test>/<stamp>`), when it recorded one.
    pub dir: Option<PathBuf>,
    pub log: PathBuf,
}

impl CampaignRecord {
    /// Reads `dir/campaign.json`.
    pub fn read(dir: &Path) -> anyhow::Result<CampaignRecord> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a campaign record", path.display()))
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(FILE);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Runs that missed their expectation, errors and runs never run count as missed.
    pub fn missed(&self) -> usize {
        self.runs.iter().filter(|r| !r.met).count() + self.not_run.len()
    }

    /// The table printed at the end.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let met = self.runs.iter().filter(|o| o.met).count();
        let not_run = self.not_run.len();
        let mut out = String::new();
        let shard = if self.shard == Shard::WHOLE {
            String::new()
        } else {
            format!(" (shard {})", self.shard)
        };
        let _ = writeln!(
            out,
            "campaign {}{shard}: {} runs, {met} as expected, {} missed{} ({:.0} s)",
            self.campaign,
            self.runs.len() + not_run,
            self.runs.len() - met,
            if not_run > 0 {
                format!(", {not_run} not run")
            } else {
                String::new()
            },
            self.seconds
        );
        let width = self.runs.iter().map(|o| o.name.len()).max().unwrap_or(3);
        let _ = writeln!(
            out,
            "  {:<width$}  {:<8} {:<8} {:<12} {:<7} {:>6}",
            "run", "expect", "verdict", "slo", "result", "time"
        );
        for o in &self.runs {
            let _ = writeln!(
                out,
                "  {:<width$}  {:<8} {:<8} {:<12} {:<7} {:>5.1}s",
                o.name,
                o.expect.name(),
                o.verdict,
                o.slo,
                if o.met { "ok" } else { "MISSED" },
                o.seconds
            );
        }
        for name in &self.not_run {
            let _ = writeln!(out, "  {name:<width$}  not run");
        }
        out
    }

    /// One JUnit test case per run; a run never run is a failed case too.
    pub fn junit(&self, store: &Path) -> String {
        let mut cases: Vec<reports::junit::Case> = self
            .runs
            .iter()
            .map(|o| {
                let report = match &o.dir {
                    Some(dir) => store.join(dir).join("report.html"),
                    None => store.join(&o.log),
                };
                reports::junit::Case {
                    name: o.name.clone(),
                    classname: format!("{}.{}", self.campaign, o.target),
                    seconds: o.seconds,
                    failure: (!o.met).then(|| reports::junit::Failure {
                        message: o.reason.clone(),
                        text: format!(
                            "expected {}, got {} (exit {:?}, SLO {}); report: {}",
                            o.expect.name(),
                            o.verdict,
                            o.code,
                            o.slo,
                            report.display()
                        ),
                    }),
                    output: format!("{} · {}", o.verdict, report.display()),
                }
            })
            .collect();
        cases.extend(self.not_run.iter().map(|name| reports::junit::Case {
            name: name.clone(),
            classname: format!("{}.not-run", self.campaign),
            seconds: 0.0,
            failure: Some(reports::junit::Failure {
                message: "not run".into(),
                text: "the campaign stopped before this run started".into(),
            }),
            output: String::new(),
        }));
        reports::junit::render(&self.campaign, &cases)
    }

    /// The exit code of the campaign: 0 every run met its expectation, 1 some missed, 3 when
    /// some never ran.
    pub fn exit_code(&self, interrupted: bool) -> u8 {
        if interrupted || !self.not_run.is_empty() {
            crate::EXIT_ERROR
        } else if self.runs.iter().any(|o| !o.met) {
            crate::EXIT_INVALID
        } else {
            crate::EXIT_VALID
        }
    }
}

/// `elapsed` as the record keeps it.
pub fn seconds(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10.0).round() / 10.0
}
