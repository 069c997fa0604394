//! The check stage (DESIGN.md §1): reads a stored history and runs every checker its workload
//! names, producing `results.json`. It needs only the stored files, so `fissure check <run-dir>`
//! re-runs it without a cluster.

use anyhow::{anyhow, Context};
use checkers::{check_model, CheckOptions, History, ModelKind, Operation, Verdict};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use workloads::workload::CheckerSpec;

/// Everything `results.json` holds about the history.
#[derive(Debug, Serialize)]
pub struct Results {
    /// `true`, `false` or `"unknown"`: every checker valid, any invalid, else unknown.
    pub valid: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Each checker's own result, by name (`linearizable`, `bank`, `set`).
    pub checkers: BTreeMap<String, Value>,
    /// Service levels, when the spec declares any: a verdict of their own, apart from safety.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<checkers::SloResult>,
    pub stats: HistoryStats,
}

impl Results {
    /// True if the run declared SLOs and breached one.
    pub fn slo_failed(&self) -> bool {
        self.slo
            .as_ref()
            .is_some_and(|s| s.verdict == checkers::SloVerdict::Fail)
    }
}

/// Counts of what the history holds.
#[derive(Debug, Default, Serialize)]
pub struct HistoryStats {
    pub events: usize,
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Invoked and never completed (the controller stopped first).
    pub open: usize,
    pub nemesis_events: usize,
    /// Per function: ok / fail / info / never completed counts.
    pub by_f: BTreeMap<String, [usize; 4]>,
}

/// Reads `history` (a `history.jsonl`) and runs `specs` on it.
pub fn check_history(
    history: &Path,
    specs: &[CheckerSpec],
    slo: Option<&checkers::SloSpec>,
    time_limit: Duration,
) -> anyhow::Result<Results> {
    let shown = history.display().to_string();
    let file =
        std::fs::File::open(history).with_context(|| format!("cannot read the history {shown}"))?;
    let history = checkers::history::read_jsonl(std::io::BufReader::new(file))
        .map_err(|e| anyhow!("{shown}: {e}"))?;
    let ops = history.operations().map_err(|e| anyhow!("{shown}: {e}"))?;
    let stats = stats(&history, &ops);
    let mut results = BTreeMap::new();
    let mut verdicts = Vec::new();
    for spec in specs {
        let (name, verdict, summary, value) = run_checker(spec, &ops, time_limit)?;
        verdicts.push((name.clone(), verdict, summary));
        results.insert(name, value);
    }
    let (valid, reason) = combine(&verdicts);
    Ok(Results {
        valid,
        reason,
        checkers: results,
        slo: slo.map(|spec| checkers::check_slo(&history, spec)),
        stats,
    })
}

/// Why a run's clean verdict proves less than it seems, from what the run itself recorded
/// (`results.json`'s `run` object; `None` when the controller died before writing it).
pub fn caveats(run: Option<&Value>) -> Vec<String> {
    let Some(run) = run.filter(|r| r.is_object()) else {
        return vec!["the run did not finish (the controller stopped before its results)".into()];
    };
    let mut out = Vec::new();
    if run["interrupted"] == json!(true) {
        out.push("the run was interrupted".into());
    }
    if run["faults_requested"] == json!(true) && run["faults_applied"] == json!(0) {
        out.push("no fault was applied".into());
    }
    if let Some(error) = run["heal_error"].as_str() {
        out.push(format!("healing failed ({error})"));
    }
    out
}

impl Results {
    /// A valid verdict with caveats is only `unknown`: nothing wrong was seen, but the test did
    /// not do what it set out to do. Invalid stays invalid (a violation is a violation).
    pub fn apply_caveats(&mut self, caveats: &[String]) {
        if caveats.is_empty() {
            return;
        }
        if self.valid == Verdict::Valid {
            self.valid = Verdict::Unknown;
        }
        self.reason = format!("{}; {}", caveats.join("; "), self.reason);
    }
}

fn run_checker(
    spec: &CheckerSpec,
    ops: &[Operation],
    time_limit: Duration,
) -> anyhow::Result<(String, Verdict, String, Value)> {
    Ok(match spec {
        CheckerSpec::Linearizable { model, init } => {
            let kind: ModelKind = model
                .parse()
                .map_err(|e: String| anyhow!("checker model {model:?}: {e}"))?;
            let options = CheckOptions {
                time_limit: Some(time_limit),
                memory_limit: Some(crate::sizes::default_memory_limit()),
                ..CheckOptions::default()
            };
            let result = check_model(kind, init, ops, &options)
                .map_err(|e| anyhow!("the {model} checker cannot read this history: {e}"))?;
            let nothing = result.checked_ops == 0;
            let summary = match result.valid {
                Verdict::Valid if nothing => "no operation to check".to_string(),
                Verdict::Valid => format!(
                    "linearizable ({} operations in {} keys)",
                    result.ops, result.partitions
                ),
                _ => result
                    .reason
                    .clone()
                    .unwrap_or_else(|| "not linearizable".into()),
            };
            let verdict = match result.valid {
                Verdict::Valid if nothing => Verdict::Unknown,
                other => other,
            };
            let mut value = serde_json::to_value(&result)?;
            value["valid"] = serde_json::to_value(verdict)?;
            ("linearizable".into(), verdict, summary, value)
        }
        CheckerSpec::Bank {
            accounts,
            initial_balance,
        } => {
            let options = checkers::bank::BankOptions {
                accounts: accounts.clone(),
                initial_balance: *initial_balance,
                allow_negative: false,
            };
            let value = serde_json::to_value(checkers::bank::check_bank(ops, &options))?;
            let nothing = value["checked_reads"].as_u64() == Some(0);
            generic("bank", value, nothing)
        }
        CheckerSpec::Set => {
            let value = serde_json::to_value(checkers::set::check_set(ops))?;
            let nothing = value["final_read"] == json!(false);
            generic("set", value, nothing)
        }
        CheckerSpec::Isolation {
            workload,
            consistency_model,
        } => isolation(*workload, *consistency_model, ops, time_limit)?,
        CheckerSpec::Counter => {
            let result = checkers::check_counter(ops);
            let nothing = result.reads == 0;
            let mut value = serde_json::to_value(&result)?;
            value["summary"] = Value::String(result.reason);
            generic("counter", value, nothing)
        }
    })
}

/// The isolation checker (`checkers::txn`) on the history's transactions, under results key
/// `isolation`: the `TxnResult` with a `summary` sentence. A history whose transactions never
/// completed `ok` proved nothing: unknown.
fn isolation(
    workload: checkers::txn::TxnWorkload,
    model: checkers::txn::ConsistencyModel,
    ops: &[Operation],
    time_limit: Duration,
) -> anyhow::Result<(String, Verdict, String, Value)> {
    use checkers::txn::{check_txn, txn_history, TxnCheckOptions};
    let history = txn_history(ops, workload)
        .map_err(|e| anyhow!("the isolation checker cannot read this {workload} history: {e}"))?;
    let options = TxnCheckOptions {
        consistency_model: model,
        time_limit: Some(time_limit),
        memory_limit: Some(crate::sizes::default_memory_limit()),
        ..TxnCheckOptions::default()
    };
    let result = check_txn(&history, &options);
    let ok = history
        .txns
        .iter()
        .filter(|t| t.outcome == checkers::Outcome::Ok)
        .count();
    let verdict = match result.valid {
        Verdict::Valid if ok == 0 => Verdict::Unknown,
        other => other,
    };
    let summary = isolation_summary(&result, verdict, history.txns.len(), ok);
    let mut value = serde_json::to_value(&result)?;
    value["valid"] = serde_json::to_value(verdict)?;
    value["summary"] = Value::String(summary.clone());
    Ok(("isolation".into(), verdict, summary, value))
}

/// One sentence: what the history was held to and what broke it, or why nothing can be said.
fn isolation_summary(
    result: &checkers::txn::TxnResult,
    verdict: Verdict,
    txns: usize,
    ok: usize,
) -> String {
    let model = result.consistency_model.to_string();
    match verdict {
        Verdict::Valid => format!(
            "{model}: no anomaly it forbids in {txns} transactions ({ok} ok, {})",
            result.workload
        ),
        Verdict::Unknown if ok == 0 => format!("no transaction completed ok among {txns}"),
        Verdict::Unknown => format!(
            "{model}: unknown ({})",
            result
                .unknown_reason
                .as_deref()
                .unwrap_or("the checker could not decide")
        ),
        Verdict::Invalid => {
            let found: Vec<String> = (result.anomaly_types.iter())
                .map(|kind| {
                    let count = result.counts.get(kind).copied().unwrap_or(0);
                    format!("{kind} ({count})")
                })
                .collect();
            let example = (result.anomalies.values())
                .flatten()
                .next()
                .map(|a| format!("; e.g. {}", a.explanation))
                .unwrap_or_default();
            format!("not {model}: {}{example}", found.join(", "))
        }
    }
}

/// A checker result with `valid` and `summary` fields; `nothing_checked` makes a valid one
/// unknown (no read completed, so the invariant was never put to the test).
fn generic(name: &str, value: Value, nothing_checked: bool) -> (String, Verdict, String, Value) {
    let summary = value["summary"].as_str().unwrap_or_default().to_string();
    let verdict = match value["valid"].as_bool() {
        Some(false) => Verdict::Invalid,
        Some(true) if !nothing_checked => Verdict::Valid,
        _ => Verdict::Unknown,
    };
    let mut value = value;
    value["valid"] = serde_json::to_value(verdict).unwrap_or(Value::Null);
    (name.to_string(), verdict, summary, value)
}

fn combine(verdicts: &[(String, Verdict, String)]) -> (Verdict, String) {
    if verdicts.is_empty() {
        return (
            Verdict::Unknown,
            "no checker applies to this workload".into(),
        );
    }
    for wanted in [Verdict::Invalid, Verdict::Unknown] {
        let hits: Vec<String> = verdicts
            .iter()
            .filter(|(_, v, _)| *v == wanted)
            .map(|(name, _, summary)| format!("{name}: {summary}"))
            .collect();
        if !hits.is_empty() {
            return (wanted, hits.join("; "));
        }
    }
    let all: Vec<String> = verdicts
        .iter()
        .map(|(name, _, summary)| format!("{name}: {summary}"))
        .collect();
    (Verdict::Valid, all.join("; "))
}

fn stats(history: &History, ops: &[Operation]) -> HistoryStats {
    let mut stats = HistoryStats {
        events: history.events.len(),
        ops: ops.len(),
        nemesis_events: history.nemesis_events().count(),
        ..Default::default()
    };
    for op in ops {
        let slot = match (op.outcome, op.ret) {
            (_, None) => {
                stats.open += 1;
                3
            }
            (checkers::Outcome::Ok, _) => {
                stats.ok += 1;
                0
            }
            (checkers::Outcome::Fail, _) => {
                stats.fail += 1;
                1
            }
            (checkers::Outcome::Info, _) => {
                stats.info += 1;
                2
            }
        };
        stats.by_f.entry(op.f.clone()).or_default()[slot] += 1;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_combine_worst_first() {
        let v = |name: &str, verdict| (name.to_string(), verdict, format!("{name} says"));
        let (valid, reason) = combine(&[v("a", Verdict::Valid), v("b", Verdict::Unknown)]);
        assert_eq!(valid, Verdict::Unknown);
        assert_eq!(reason, "b: b says");
        let (valid, reason) = combine(&[v("a", Verdict::Invalid), v("b", Verdict::Unknown)]);
        assert_eq!((valid, reason.as_str()), (Verdict::Invalid, "a: a says"));
        assert_eq!(combine(&[]).0, Verdict::Unknown);
        assert_eq!(combine(&[v("a", Verdict::Valid)]).0, Verdict::Valid);
    }

    #[test]
    fn unfinished_runs_are_only_unknown() {
        assert_eq!(caveats(None).len(), 1);
        let clean = json!({"interrupted": false, "faults_requested": true, "faults_applied": 3});
        assert!(caveats(Some(&clean)).is_empty());
        let bad = json!({"interrupted": true, "faults_requested": true, "faults_applied": 0,
                         "heal_error": "n2 would not start"});
        let found = caveats(Some(&bad));
        assert_eq!(found.len(), 3, "{found:?}");
        let mut results = Results {
            valid: Verdict::Valid,
            reason: "linearizable".into(),
            checkers: BTreeMap::new(),
            slo: None,
            stats: HistoryStats::default(),
        };
        assert!(!results.slo_failed());
        results.apply_caveats(&found);
        assert_eq!(results.valid, Verdict::Unknown);
        assert!(results.reason.starts_with("the run was interrupted"));
        results.valid = Verdict::Invalid;
        results.apply_caveats(&found);
        assert_eq!(results.valid, Verdict::Invalid);
    }
}

#[cfg(test)]
mod isolation_tests {
    use super::*;
    use checkers::txn::{ConsistencyModel, TxnWorkload};

    /// Two list-append transactions, each reading the other's append: G1c.
    const G1C: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["append",1,1],["r",2,null]]}
{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["append",2,1],["r",1,null]]}
{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",2,[1]]]}
{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["append",2,1],["r",1,[1]]]}
"#;

    fn check(history: &str, model: ConsistencyModel) -> Results {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, history).unwrap();
        let spec = CheckerSpec::Isolation {
            workload: TxnWorkload::ListAppend,
            consistency_model: model,
        };
        check_history(&path, &[spec], None, Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn a_cycle_is_invalid_with_its_anomaly_named_in_the_reason() {
        let results = check(G1C, ConsistencyModel::StrictSerializable);
        assert_eq!(results.valid, Verdict::Invalid);
        assert!(
            results
                .reason
                .starts_with("isolation: not strict-serializable: G1c (1)"),
            "{}",
            results.reason
        );
        let isolation = &results.checkers["isolation"];
        assert_eq!(isolation["valid"], json!(false));
        assert_eq!(isolation["anomaly_types"], json!(["G1c"]));
        assert_eq!(
            isolation["summary"].as_str(),
            Some(results.reason.strip_prefix("isolation: ").unwrap())
        );
        // Read uncommitted allows G1c: the same history is then valid.
        let results = check(G1C, ConsistencyModel::ReadUncommitted);
        assert_eq!(results.valid, Verdict::Valid, "{}", results.reason);
        assert!(results
            .reason
            .contains("read-uncommitted: no anomaly it forbids"));
    }

    #[test]
    fn no_transaction_completed_is_unknown_and_garbage_is_an_error() {
        let none_ok = G1C.replace("\"ok\"", "\"info\"");
        let results = check(&none_ok, ConsistencyModel::StrictSerializable);
        assert_eq!(results.valid, Verdict::Unknown);
        assert!(
            results.reason.contains("no transaction completed ok"),
            "{}",
            results.reason
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        // A register write in a list-append history.
        std::fs::write(&path, G1C.replace("[\"append\",1,1]", "[\"w\",1,1]")).unwrap();
        let spec = CheckerSpec::Isolation {
            workload: TxnWorkload::ListAppend,
            consistency_model: ConsistencyModel::Serializable,
        };
        let err = check_history(&path, &[spec], None, Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains("not a micro-op of list-append"),
            "{err:#}"
        );
    }
}
