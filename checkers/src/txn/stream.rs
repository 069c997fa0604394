//! Reading Fissure's `history.jsonl` straight into transactions, one line at a time.
//!
//! The general path (`read_jsonl`, then `History::operations`, then [`super::txn_history`]) holds
//! every event and every operation as `serde_json::Value` trees before the first transaction is
//! read: gigabytes at a million transactions. Here each line is read into a small struct that
//! borrows from the line, the value kept as raw text; an invocation waits, as text, only until its
//! completion, and only the micro-ops the transaction keeps (the `ok` completion's, else the
//! invocation's) are read. The result is the same [`TxnHistory`] as the general path's, and so
//! are the pairing rules and the workload guess.

use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use smol_str::SmolStr;
use std::borrow::Cow;
use std::io::BufRead;

use super::history::{Txn, TxnHistory, TxnWorkload};
use super::mops::{self, Guess, KeyTable, Str};
use crate::history::pairing::{double_invoke, orphan_completion, other_completion};
use crate::history::{EventType, JsonlError, Outcome, Process};

/// Reads a JSON Lines history into its transactions, as `read_jsonl`, pairing and
/// [`super::txn_history`] would, without holding the history in memory. With no `workload`, it
/// is guessed as [`super::guess_workload`] guesses it. Nemesis entries and operations that are not
/// transactions are paired and skipped. Errors name the line, as `read_jsonl`'s do.
pub fn read_txn_jsonl(
    mut reader: impl BufRead,
    workload: Option<TxnWorkload>,
) -> Result<TxnHistory, JsonlError> {
    let mut state = State {
        fixed: workload.is_some(),
        workload,
        guess: Guess::default(),
        txns: Vec::new(),
        keys: KeyTable::default(),
        open: FxHashMap::default(),
        pending: Vec::new(),
    };
    let mut line = String::new();
    let mut line_no = 0;
    let mut position = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let event: Line<'_> = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(e) if !line.ends_with('\n') && e.is_eof() => {
                tracing::warn!(line = line_no, "ignoring a torn last line: {e}");
                break;
            }
            Err(e) if e.is_syntax() || e.is_eof() => {
                return Err(at(line_no, format!("not valid JSON: {e}")))
            }
            Err(e) => return Err(at(line_no, format!("not a history event: {e}"))),
        };
        state.event(&event, position, line_no)?;
        position += 1;
    }
    state.finish()
}

fn at(line: usize, message: String) -> JsonlError {
    JsonlError::Line { line, message }
}

/// One line of `history.jsonl`, borrowed from it; fields a transaction does not need are only
/// checked for their type, as `Event` would.
#[derive(Deserialize)]
struct Line<'a> {
    index: Option<u64>,
    #[allow(dead_code)]
    time: Option<u64>,
    process: Process,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    #[allow(dead_code)]
    node: Option<Str<'a>>,
}

/// An invocation waiting for its completion.
struct Open {
    f: SmolStr,
    line: usize,
    /// For a transaction: its id and its micro-ops as written.
    txn: Option<(usize, String)>,
}

/// Micro-ops read before the history said its workload (reads only, so far).
struct Pending {
    txn: usize,
    line: usize,
    known: bool,
    text: String,
}

struct State {
    fixed: bool,
    workload: Option<TxnWorkload>,
    guess: Guess,
    txns: Vec<Txn>,
    keys: KeyTable,
    open: FxHashMap<u64, Open>,
    pending: Vec<Pending>,
}

impl State {
    fn event(&mut self, e: &Line<'_>, position: usize, line: usize) -> Result<(), JsonlError> {
        let Process::Client(process) = e.process else {
            return Ok(());
        };
        let index = e.index.unwrap_or(position as u64);
        let value = e.value.map_or("null", RawValue::get);
        let is_list = value.starts_with('[');
        if e.kind == EventType::Invoke {
            if let Some(open) = self.open.get(&process) {
                let earlier = format!("line {}", open.line);
                return Err(at(line, double_invoke(process, &e.f, &open.f, &earlier)));
            }
            let txn = ((e.f == "txn" || e.f.is_empty()) && is_list).then(|| {
                let id = self.txns.len();
                self.txns.push(Txn {
                    id,
                    process,
                    outcome: Outcome::Info,
                    mops: Vec::new(),
                    call: position,
                    ret: None,
                    invoke_index: index,
                    complete_index: None,
                });
                (id, value.to_string())
            });
            if txn.is_some() {
                self.scan(value, line)?;
            }
            let f = SmolStr::new(&e.f);
            self.open.insert(process, Open { f, line, txn });
            return Ok(());
        }
        let Some(open) = self.open.remove(&process) else {
            return Err(at(line, orphan_completion(process, &e.f, e.kind)));
        };
        if open.f.as_str() != e.f {
            let earlier = format!("line {}", open.line);
            return Err(at(line, other_completion(process, &e.f, &open.f, &earlier)));
        }
        let Some((id, input)) = open.txn else {
            return Ok(());
        };
        let txn = &mut self.txns[id];
        txn.outcome = match e.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        txn.ret = Some(position);
        txn.complete_index = Some(index);
        // An `ok` completion's micro-ops carry what the reads saw; else the invocation's stand.
        let known = e.kind == EventType::Ok;
        if known && is_list {
            self.read(id, line, known, Cow::Borrowed(value))
        } else {
            if is_list {
                self.scan(value, line)?;
            }
            self.read(id, open.line, known, Cow::Owned(input))
        }
    }

    /// Notes the functions of micro-ops (on `line`) for the workload guess, parsing them only
    /// when they may hold a function not yet seen.
    fn scan(&mut self, text: &str, line: usize) -> Result<(), JsonlError> {
        if self.fixed {
            return Ok(());
        }
        let (appends, writes) = self.guess.seen();
        if (!appends && text.contains("\"append\""))
            || (!writes && text.contains("\"w\""))
            || text.contains('\\')
        {
            self.guess.see_text(text);
            self.decide(line)?;
        }
        Ok(())
    }

    /// Settles the workload once the micro-ops say it, and reads what waited for it.
    fn decide(&mut self, line: usize) -> Result<(), JsonlError> {
        let guessed = self.guess.decided().map_err(|m| at(line, m))?;
        if self.workload.is_none() && guessed.is_some() {
            self.workload = guessed;
            for p in std::mem::take(&mut self.pending) {
                self.read(p.txn, p.line, p.known, Cow::Owned(p.text))?;
            }
        }
        Ok(())
    }

    /// Reads transaction `id`'s micro-ops from `text` (on `line`), or keeps them until the
    /// workload is known.
    fn read(
        &mut self,
        id: usize,
        line: usize,
        known: bool,
        text: Cow<'_, str>,
    ) -> Result<(), JsonlError> {
        let invoke_index = self.txns[id].invoke_index;
        let fail = |message: String| at(line, format!("operation {invoke_index}: {message}"));
        let workload = self.workload.unwrap_or(TxnWorkload::ListAppend);
        let Some(raw) = mops::parse_text(&text) else {
            let scratch = &mut KeyTable::default();
            let message = mops::from_text(&text, workload, known, id, scratch).err();
            return Err(fail(
                message.unwrap_or_else(|| "unreadable micro-ops".into()),
            ));
        };
        if !self.fixed {
            for r in &raw {
                self.guess.see(&r.f);
            }
            self.decide(line)?;
        }
        let Some(workload) = self.workload else {
            drop(raw);
            self.pending.push(Pending {
                txn: id,
                line,
                known,
                text: text.into_owned(),
            });
            return Ok(());
        };
        let mops = mops::from_raw(raw, &text, workload, known, id, &mut self.keys);
        self.txns[id].mops = mops.map_err(fail)?;
        Ok(())
    }

    /// Invocations never completed are `info`, with the micro-ops they were invoked with; reads
    /// alone make a list-append history.
    fn finish(mut self) -> Result<TxnHistory, JsonlError> {
        let mut open: Vec<(usize, usize, String)> = std::mem::take(&mut self.open)
            .into_values()
            .filter_map(|o| o.txn.map(|(id, input)| (o.line, id, input)))
            .collect();
        open.sort_unstable();
        for (line, id, input) in open {
            self.read(id, line, false, Cow::Owned(input))?;
        }
        if self.workload.is_none() {
            self.workload = Some(TxnWorkload::ListAppend);
            for p in std::mem::take(&mut self.pending) {
                self.read(p.txn, p.line, p.known, Cow::Owned(p.text))?;
            }
        }
        let mut txns = self.txns;
        let key_names = self.keys.finish(&mut txns);
        Ok(TxnHistory {
            workload: self.workload.unwrap_or(TxnWorkload::ListAppend),
            txns,
            key_names,
        })
    }
}
