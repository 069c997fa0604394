//! raft-kv's durable state in `--data-dir`: `state.json` (current term and vote, replaced
//! atomically) and `log.jsonl` (the log, one entry per line). Every write is fsync'd before it
//! returns, and callers write before they answer.

use super::types::Entry;
use crate::storage::{load_json, save_json, DurableLog};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The term and vote, which must survive a crash before a vote is answered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<String>,
}

pub struct Store {
    log: DurableLog,
    state_path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store and returns what it holds.
    pub fn open(dir: &Path) -> io::Result<(Store, HardState, Vec<Entry>)> {
        let state_path = dir.join("state.json");
        let state = load_json(&state_path)?.unwrap_or_default();
        let (log, entries) = DurableLog::open(dir.join("log.jsonl"))?;
        Ok((Store { log, state_path }, state, entries))
    }

    pub fn save_state(&mut self, state: &HardState) -> io::Result<()> {
        save_json(&self.state_path, state)
    }

    /// Adds entries at the end of the stored log.
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.log.append(entries)
    }

    /// Replaces the stored log (after cutting a conflicting suffix).
    pub fn rewrite(&mut self, entries: &[Entry]) -> io::Result<()> {
        self.log.rewrite(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Command;

    #[test]
    fn state_and_log_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let e = |term| Entry {
            term,
            command: Command::Noop,
        };
        {
            let (mut store, state, entries) = Store::open(dir.path()).unwrap();
            assert_eq!(state, HardState::default());
            assert!(entries.is_empty());
            store
                .save_state(&HardState {
                    term: 3,
                    voted_for: Some("n2".into()),
                })
                .unwrap();
            store.append(&[e(1), e(2), e(3)]).unwrap();
            store.rewrite(&[e(1), e(3)]).unwrap();
            store.append(&[e(3)]).unwrap();
        }
        let (_, state, entries) = Store::open(dir.path()).unwrap();
        assert_eq!(state.term, 3);
        assert_eq!(state.voted_for.as_deref(), Some("n2"));
        assert_eq!(entries, vec![e(1), e(3), e(3)]);
    }
}
