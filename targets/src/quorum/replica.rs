//! One node's replica: the versioned values it holds, kept durably, and the peer messages that
//! read and store them.
//!
//! A replica keeps, per key, only the highest version it was ever sent. A store is appended to an
//! fsync'd log before it is acknowledged and before it becomes visible to reads, so whatever a
//! replica reports survives SIGKILL and restart. A store of a version no higher than the one held
//! is acknowledged without writing: the replica already holds something at least as new, which is
//! all a quorum needs of it.

use super::version::{Entry, Version};
use crate::storage::DurableLog;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A request from a coordinator to a replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerRequest {
    /// What do you hold for `key`?
    Read { key: String },
    /// Keep `entry` for `key` if it is newer than what you hold.
    Store { key: String, entry: Entry },
}

/// A replica's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerResponse {
    Read {
        entry: Option<Entry>,
    },
    /// Durably holds `current` (the stored version or a higher one) for the key.
    Stored {
        current: Version,
    },
    Error {
        error: String,
    },
}

/// One line of the replica's log.
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    entry: Entry,
}

/// A store waiting for the writer thread.
struct Write {
    key: String,
    entry: Entry,
    done: oneshot::Sender<io::Result<Version>>,
}

type Entries = Arc<Mutex<HashMap<String, Entry>>>;

/// Compact the log once it holds this many records and four times as many as there are keys.
const COMPACT_AT: usize = 4096;

/// A replica. Reads see only what is durable; stores go through one writer thread that appends
/// every store waiting at the time with a single fsync (group commit), so a burst of stores (say,
/// the messages a partition held back, delivered at once when it heals) costs one fsync, and no
/// async thread ever waits on the disk.
pub struct Replica {
    entries: Entries,
    writes: std_mpsc::Sender<Write>,
}

impl Replica {
    /// Opens the replica kept in `dir`, replaying its log, and starts its writer thread.
    pub fn open(dir: &Path) -> io::Result<Replica> {
        let path = dir.join("replica.jsonl");
        drop_torn_tail(&path)?;
        let (log, records) = DurableLog::open::<Record>(&path)?;
        let count = records.len();
        let mut entries: HashMap<String, Entry> = HashMap::new();
        for Record { key, entry } in records {
            match entries.get(&key) {
                Some(held) if held.version >= entry.version => {}
                _ => {
                    entries.insert(key, entry);
                }
            }
        }
        let entries = Arc::new(Mutex::new(entries));
        let (writes, queue) = std_mpsc::channel();
        let writer = Writer {
            log,
            entries: entries.clone(),
            records: count,
            broken: None,
        };
        std::thread::Builder::new()
            .name("replica-writer".into())
            .spawn(move || writer.run(queue))?;
        Ok(Replica { entries, writes })
    }

    /// What this replica durably holds for `key`.
    pub fn read(&self, key: &str) -> Option<Entry> {
        lock(&self.entries).get(key).cloned()
    }

    pub fn keys(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Keeps `entry` if it is newer than what is held; returns, once that is durable, the version
    /// now held (`entry`'s or a higher one).
    pub async fn store(&self, key: &str, entry: &Entry) -> io::Result<Version> {
        if let Some(held) = lock(&self.entries).get(key) {
            if held.version >= entry.version {
                return Ok(held.version.clone());
            }
        }
        let stopped = || io::Error::other("the replica's writer thread stopped");
        let (done, answer) = oneshot::channel();
        self.writes
            .send(Write {
                key: key.to_string(),
                entry: entry.clone(),
                done,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Cuts a last line that lacks its newline. `DurableLog::open` would keep such a line when it
/// parses (a crash can cut an append just before its newline) and then append the next record on
/// the same line, which makes both unreadable, and everything after them dropped, at the next
/// start. The cut record was never acknowledged: appends are acknowledged only after the fsync.
fn drop_torn_tail(path: &Path) -> io::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    tracing::warn!(
        "dropping a torn last record ({} bytes) from {}",
        bytes.len() - keep,
        path.display()
    );
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()
}

fn lock(entries: &Entries) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
    entries.lock().unwrap_or_else(|e| e.into_inner())
}

/// The one thread that appends to the replica's log.
struct Writer {
    log: DurableLog,
    entries: Entries,
    /// Records in the log, for compaction.
    records: usize,
    /// Set when the log can no longer be trusted to take appends (a failed compaction).
    broken: Option<String>,
}

impl Writer {
    fn run(mut self, queue: std_mpsc::Receiver<Write>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            batch.extend(queue.try_iter());
            self.commit(batch);
        }
    }

    /// Appends the newest entry per key of `batch` that beats what is held, with one fsync, then
    /// makes it visible and answers every store in the batch.
    fn commit(&mut self, batch: Vec<Write>) {
        let mut newest: HashMap<String, Entry> = HashMap::new();
        {
            let held = lock(&self.entries);
            for write in &batch {
                let current = newest.get(&write.key).or_else(|| held.get(&write.key));
                if current.is_none_or(|c| c.version < write.entry.version) {
                    newest.insert(write.key.clone(), write.entry.clone());
                }
            }
        }
        let records: Vec<Record> = newest
            .into_iter()
            .map(|(key, entry)| Record { key, entry })
            .collect();
        let appended = match &self.broken {
            _ if records.is_empty() => Ok(()),
            Some(why) => Err(why.clone()),
            None => self.log.append(&records).map_err(|e| e.to_string()),
        };
        let mut held = lock(&self.entries);
        if appended.is_ok() {
            self.records += records.len();
            for Record { key, entry } in records {
                held.insert(key, entry);
            }
        }
        for write in batch {
            // Whatever is held now is durable: a store it covers succeeded, whatever happened to
            // the append.
            let answer = match (held.get(&write.key), &appended) {
                (Some(h), _) if h.version >= write.entry.version => Ok(h.version.clone()),
                (_, Err(e)) => Err(io::Error::other(format!("store failed: {e}"))),
                (_, Ok(())) => Err(io::Error::other("store lost (a bug)")),
            };
            let _ = write.done.send(answer);
        }
        if self.records >= COMPACT_AT && self.records >= 4 * held.len() {
            let all: Vec<Record> = held
                .iter()
                .map(|(key, entry)| Record {
                    key: key.clone(),
                    entry: entry.clone(),
                })
                .collect();
            drop(held);
            match self.log.rewrite(&all) {
                Ok(()) => self.records = all.len(),
                Err(e) => {
                    // The new log may already be in place while appends would still go to the
                    // old file: refuse further stores rather than lose them. Everything held is
                    // durable (appended and fsync'd, and in the rewritten file if renamed).
                    tracing::error!("compacting the replica log failed, refusing stores: {e}");
                    self.broken = Some(format!("replica log compaction failed: {e}"));
                }
            }
        }
    }
}

/// Answers one peer request.
pub async fn handle(replica: Arc<Replica>, request: PeerRequest) -> PeerResponse {
    match request {
        PeerRequest::Read { key } => PeerResponse::Read {
            entry: replica.read(&key),
        },
        PeerRequest::Store { key, entry } => match replica.store(&key, &entry).await {
            Ok(current) => PeerResponse::Stored { current },
            Err(e) => PeerResponse::Error {
                error: e.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(counter: i64, node: &str, value: &str) -> Entry {
        Entry {
            version: Version {
                counter,
                node: node.into(),
                seq: 0,
            },
            value: json!(value),
        }
    }

    #[tokio::test]
    async fn keeps_only_higher_versions_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path()).unwrap();
        assert_eq!(replica.read("k"), None);
        let b = entry(2, "n1", "b");
        assert_eq!(replica.store("k", &b).await.unwrap(), b.version);
        // An older version is acknowledged with the newer one held, and not kept.
        assert_eq!(
            replica.store("k", &entry(1, "n3", "a")).await.unwrap(),
            b.version
        );
        assert_eq!(replica.read("k"), Some(b.clone()));
        let c = entry(2, "n2", "c");
        replica.store("k", &c).await.unwrap();
        replica.store("other", &entry(1, "n1", "o")).await.unwrap();
        drop(replica);
        let replica = Replica::open(dir.path()).unwrap();
        assert_eq!(replica.read("k"), Some(c));
        assert_eq!(replica.keys(), 2);
    }

    #[tokio::test]
    async fn a_record_cut_before_its_newline_is_dropped_not_glued_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path()).unwrap();
        replica.store("a", &entry(1, "n1", "a")).await.unwrap();
        drop(replica);
        // A crash cut the next append just before its newline: the record parses, but it was
        // never acknowledged.
        let path = dir.path().join("replica.jsonl");
        let mut log = std::fs::read(&path).unwrap();
        let torn = Record {
            key: "b".into(),
            entry: entry(1, "n1", "torn"),
        };
        log.extend(serde_json::to_vec(&torn).unwrap());
        std::fs::write(&path, log).unwrap();
        let replica = Replica::open(dir.path()).unwrap();
        assert_eq!(replica.read("b"), None);
        replica.store("c", &entry(1, "n1", "c")).await.unwrap();
        drop(replica);
        let replica = Replica::open(dir.path()).unwrap();
        assert_eq!(replica.read("a").unwrap().value, json!("a"));
        assert_eq!(replica.read("c").unwrap().value, json!("c"));
    }

    #[tokio::test]
    async fn compaction_keeps_the_latest_values() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path()).unwrap();
        for i in 1..=(COMPACT_AT as i64 + 10) {
            replica
                .store(&format!("k{}", i % 3), &entry(i, "n1", &i.to_string()))
                .await
                .unwrap();
        }
        let log = std::fs::read_to_string(dir.path().join("replica.jsonl")).unwrap();
        assert!(log.lines().count() < COMPACT_AT, "compacted");
        drop(replica);
        let replica = Replica::open(dir.path()).unwrap();
        let last = COMPACT_AT as i64 + 10;
        assert_eq!(
            replica.read(&format!("k{}", last % 3)).unwrap().value,
            json!(last.to_string())
        );
        assert_eq!(replica.keys(), 3);
    }

    #[test]
    fn peer_messages_round_trip() {
        let request = PeerRequest::Store {
            key: "k".into(),
            entry: entry(1, "n1", "v"),
        };
        let line = serde_json::to_string(&request).unwrap();
        assert!(line.starts_with(r#"{"type":"store""#), "{line}");
        assert_eq!(serde_json::from_str::<PeerRequest>(&line).unwrap(), request);
        let response = PeerResponse::Read { entry: None };
        let line = serde_json::to_string(&response).unwrap();
        assert_eq!(
            serde_json::from_str::<PeerResponse>(&line).unwrap(),
            response
        );
    }
}
