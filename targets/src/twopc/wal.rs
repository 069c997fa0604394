//! An async handle on a [`DurableLog`]: one writer at a time, fsyncs off the async threads.
//!
//! Callers take the [`WalGuard`] *before* looking at the state a record depends on and update
//! that state *before* dropping it, so the log's order is the order in which state changed and
//! a compaction (which snapshots the state under the same guard) can never drop a record that was
//! appended but not yet reflected in memory.

use crate::storage::DurableLog;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

struct Inner {
    log: DurableLog,
    /// Records in the file, to decide when to compact.
    records: usize,
}

#[derive(Clone)]
pub struct Wal {
    inner: Arc<Mutex<Inner>>,
}

pub struct WalGuard {
    guard: OwnedMutexGuard<Inner>,
}

impl Wal {
    /// Opens the log at `path`, returning it with the records it holds.
    pub fn open<T: DeserializeOwned>(path: impl Into<PathBuf>) -> io::Result<(Wal, Vec<T>)> {
        let (log, records) = DurableLog::open(path)?;
        let wal = Wal {
            inner: Arc::new(Mutex::new(Inner {
                log,
                records: records.len(),
            })),
        };
        Ok((wal, records))
    }

    pub async fn lock(&self) -> WalGuard {
        WalGuard {
            guard: self.inner.clone().lock_owned().await,
        }
    }
}

impl WalGuard {
    /// Appends and fsyncs `records`; the guard comes back either way.
    pub async fn append<T>(self, records: Vec<T>) -> (WalGuard, io::Result<()>)
    where
        T: Serialize + Send + 'static,
    {
        let mut guard = self.guard;
        let (guard, result) = tokio::task::spawn_blocking(move || {
            let result = guard.log.append(&records);
            if result.is_ok() {
                guard.records += records.len();
            }
            (guard, result)
        })
        .await
        .expect("log appends do not panic");
        (WalGuard { guard }, result)
    }

    /// Replaces the whole log with `records`, atomically.
    pub async fn rewrite<T>(self, records: Vec<T>) -> (WalGuard, io::Result<()>)
    where
        T: Serialize + Send + 'static,
    {
        let mut guard = self.guard;
        let (guard, result) = tokio::task::spawn_blocking(move || {
            let result = guard.log.rewrite(&records);
            if result.is_ok() {
                guard.records = records.len();
            }
            (guard, result)
        })
        .await
        .expect("log rewrites do not panic");
        (WalGuard { guard }, result)
    }

    /// Records in the log file.
    pub fn records(&self) -> usize {
        self.guard.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_and_rewrites_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.jsonl");
        let (wal, records) = Wal::open::<u32>(&path).unwrap();
        assert!(records.is_empty());
        let (guard, result) = wal.lock().await.append(vec![1u32, 2]).await;
        result.unwrap();
        assert_eq!(guard.records(), 2);
        let (guard, result) = guard.rewrite(vec![7u32]).await;
        result.unwrap();
        let (guard, result) = guard.append(vec![8u32]).await;
        result.unwrap();
        assert_eq!(guard.records(), 2);
        drop(guard);
        drop(wal);
        let (_, records) = Wal::open::<u32>(&path).unwrap();
        assert_eq!(records, vec![7, 8]);
    }
}
