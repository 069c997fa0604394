//! A stored run as the report sees it: its spec (`test.json`), its results (`results.json`,
//! never recomputed here) and its history (`history.jsonl`) paired into operations and fault
//! windows. Built to hold a million operations: values are kept as short text, names interned.

use anyhow::Context;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    /// Unknown: it may or may not have happened.
    Info,
    /// Never completed before the history ended.
    Open,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "open",
        }
    }
}

/// Values longer than this are cut (with "…") in the report: it shows operations, not data.
pub const VALUE_CHARS: usize = 80;

/// One client operation: its invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The history index of the invocation.
    pub index: u64,
    pub process: u64,
    /// Index into [`RunData::functions`].
    pub f: u16,
    /// The key, as text ("" when the op has none).
    pub key: Box<str>,
    /// Nanoseconds since the run started.
    pub invoke_ns: u64,
    /// When it completed; `None` for [`Outcome::Open`].
    pub complete_ns: Option<u64>,
    pub outcome: Outcome,
    /// The invocation's value, as compact JSON, cut at [`VALUE_CHARS`].
    pub value: Box<str>,
    /// The completion's value (a read's result), likewise.
    pub result: Box<str>,
    pub node: Box<str>,
}

impl Op {
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// A fault in force from `start_ns` to `end_ns` (`None`: never healed in the history).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// partition, kill, pause, clock, latency, loss
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    /// What was done (the nemesis's value), as compact JSON, cut at 200 characters.
    pub detail: String,
}

/// Everything a report shows.
#[derive(Debug)]
pub struct RunData {
    pub dir: PathBuf,
    /// test.json (`Value::Null` if missing).
    pub test: Value,
    /// results.json (`Value::Null` if missing).
    pub results: Value,
    /// Operation names, indexed by [`Op::f`].
    pub functions: Vec<String>,
    /// Client operations in invocation order.
    pub ops: Vec<Op>,
    pub faults: Vec<FaultWindow>,
    /// The time of the history's last event.
    pub end_ns: u64,
    /// Lines of history.jsonl that could not be read (a torn last line, say).
    pub skipped_lines: usize,
}

/// The fault kind a nemesis `f` starts or stops, and whether it starts it: the SLO checker's
/// reading, so the report's fault windows are the ones its SLO verdict speaks of.
pub use checkers::slo::fault_event;

/// Compact JSON cut at `max` characters.
pub fn short(value: &Value, max: usize) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= max {
        text
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl RunData {
    /// Reads a run directory. A missing history or results file makes an emptier report, not
    /// an error; a directory that is not a run is an error.
    pub fn load(dir: &Path) -> anyhow::Result<RunData> {
        let history = dir.join("history.jsonl");
        if !dir.join("test.json").is_file() && !history.is_file() {
            anyhow::bail!(
                "{} is not a run directory (no test.json or history.jsonl)",
                dir.display()
            );
        }
        let mut data = RunData {
            dir: dir.to_path_buf(),
            test: read_json(&dir.join("test.json"))?,
            results: read_json(&dir.join("results.json"))?,
            functions: Vec::new(),
            ops: Vec::new(),
            faults: Vec::new(),
            end_ns: 0,
            skipped_lines: 0,
        };
        if history.is_file() {
            let file = std::fs::File::open(&history)
                .with_context(|| format!("cannot read {}", history.display()))?;
            data.read_history(BufReader::new(file))?;
        }
        Ok(data)
    }

    /// Pairs the events of a jsonl history.
    pub fn read_history(&mut self, reader: impl BufRead) -> anyhow::Result<()> {
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        let mut names: BTreeMap<String, u16> = BTreeMap::new();
        let mut windows: BTreeMap<&'static str, (u64, String)> = BTreeMap::new();
        for line in reader.lines() {
            let line = line.context("reading the history")?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                self.skipped_lines += 1;
                continue;
            };
            let time = event["time"].as_u64().unwrap_or(0);
            self.end_ns = self.end_ns.max(time);
            let f = event["f"].as_str().unwrap_or("");
            let kind = event["type"].as_str().unwrap_or("");
            let Some(process) = event["process"].as_u64() else {
                // The nemesis: windows of faults.
                if f == "heal" {
                    for (kind, (start, detail)) in std::mem::take(&mut windows) {
                        self.close_window(kind, start, detail, time);
                    }
                } else if let Some((fault, starts)) = fault_event(f) {
                    let detail = short(&event["value"], 200);
                    if starts {
                        // A start's planned and done events: the window opens at the first,
                        // and says what the second did.
                        windows
                            .entry(fault)
                            .and_modify(|w| w.1 = detail.clone())
                            .or_insert((time, detail));
                    } else if let Some((start, detail)) = windows.remove(fault) {
                        self.close_window(fault, start, detail, time);
                    } else if let Some(last) =
                        (self.faults.iter_mut().rev()).find(|w| w.kind == fault)
                    {
                        // The done event of a stop whose planned event closed the window.
                        last.end_ns = Some(last.end_ns.unwrap_or(time).max(time));
                    }
                }
                continue;
            };
            if kind == "invoke" {
                let next = names.len() as u16;
                let f_index = *names.entry(f.to_string()).or_insert(next);
                open.insert(process, self.ops.len());
                self.ops.push(Op {
                    index: event["index"].as_u64().unwrap_or(0),
                    process,
                    f: f_index,
                    key: short(&event["key"], 40).into(),
                    invoke_ns: time,
                    complete_ns: None,
                    outcome: Outcome::Open,
                    value: short(&event["value"], VALUE_CHARS).into(),
                    result: "".into(),
                    node: event["node"].as_str().unwrap_or("").into(),
                });
            } else if let Some(at) = open.remove(&process) {
                let op = &mut self.ops[at];
                op.complete_ns = Some(time);
                op.outcome = match kind {
                    "ok" => Outcome::Ok,
                    "fail" => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.result = short(&event["value"], VALUE_CHARS).into();
            }
        }
        for (kind, (start, detail)) in std::mem::take(&mut windows) {
            self.faults.push(FaultWindow {
                kind: kind.into(),
                start_ns: start,
                end_ns: None,
                detail,
            });
        }
        self.faults.sort_by_key(|w| w.start_ns);
        let mut functions = vec![String::new(); names.len()];
        for (name, i) in names {
            functions[i as usize] = name;
        }
        self.functions = functions;
        Ok(())
    }

    fn close_window(&mut self, kind: &str, start: u64, detail: String, end: u64) {
        self.faults.push(FaultWindow {
            kind: kind.into(),
            start_ns: start,
            end_ns: Some(end),
            detail,
        });
    }

    /// The function name of `op`.
    pub fn function(&self, op: &Op) -> &str {
        &self.functions[op.f as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = r#"{"index":0,"time":1000,"process":0,"type":"invoke","f":"write","key":"k1","value":3,"node":"n1"}
{"index":1,"time":2000,"process":"nemesis","type":"info","f":"start-partition","value":{"partition":"halves"}}
{"index":2,"time":2500,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n2"]}}}
{"index":3,"time":3000,"process":0,"type":"ok","f":"write","key":"k1","value":3,"node":"n1"}
{"index":4,"time":3500,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n2"}
{"index":5,"time":4000,"process":"nemesis","type":"info","f":"stop-partition","value":null}
{"index":6,"time":4200,"process":"nemesis","type":"info","f":"stop-partition","value":"healed"}
{"index":7,"time":4500,"process":"nemesis","type":"info","f":"pause","value":{"nodes":["n3"]}}
{"index":8,"time":5000,"process":1,"type":"info","f":"read","key":"k1","value":null}
{"index":9,"time":6000,"process":2,"type":"invoke","f":"read","key":"k1","node":"n1"}
{"#;

    #[test]
    fn operations_pair_and_fault_windows_open_and_close() {
        let mut data = RunData {
            dir: PathBuf::new(),
            test: Value::Null,
            results: Value::Null,
            functions: Vec::new(),
            ops: Vec::new(),
            faults: Vec::new(),
            end_ns: 0,
            skipped_lines: 0,
        };
        data.read_history(HISTORY.as_bytes()).unwrap();
        assert_eq!(data.skipped_lines, 1, "the torn last line");
        assert_eq!(data.ops.len(), 3);
        assert_eq!(data.ops[0].outcome, Outcome::Ok);
        assert_eq!(data.ops[0].latency_ns(), Some(2000));
        assert_eq!(data.function(&data.ops[0]), "write");
        assert_eq!(data.ops[1].outcome, Outcome::Info);
        assert_eq!(data.ops[2].outcome, Outcome::Open);
        assert_eq!(data.faults.len(), 2);
        let partition = &data.faults[0];
        assert_eq!((partition.start_ns, partition.end_ns), (2000, Some(4200)));
        assert!(partition.detail.contains("grudge"));
        assert_eq!(data.faults[1].kind, "pause");
        assert_eq!(data.faults[1].end_ns, None, "never resumed");
        assert_eq!(data.end_ns, 6000);
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(500));
        assert_eq!(short(&long, 10).chars().count(), 11);
        assert_eq!(short(&Value::Null, 10), "");
        assert_eq!(short(&serde_json::json!([1, 2]), 10), "[1,2]");
    }
}
