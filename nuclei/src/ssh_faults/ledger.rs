//! The fault ledger: every fault is written (and fsync'd) to a file in the cluster's state
//! directory *before* it is applied, and its undo after it is undone. Whatever happens to the
//! controller, even SIGKILL, the ledger names every fault that may still be in force on a
//! node, so `fissure heal` can undo them later.
//!
//! One JSON object per line. A torn last line (the controller died mid-write) is ignored.

use crate::control::NodeId;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The kinds of fault a node can be left with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// iptables DROP rules against peers.
    Partition,
    /// iptables `statistic` loss.
    Loss,
    /// tc netem delay, or the link daemon's faults file.
    Latency,
    /// The target process SIGKILLed (heal starts it again).
    Kill,
    /// The target process SIGSTOPped.
    Pause,
    /// The libfaketime file moved off zero.
    Clock,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
        }
    }
}

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Entry {
    /// About to apply `kind` on `node`; `detail` says what exactly (peers cut, offset, ...).
    Apply {
        kind: FaultKind,
        node: NodeId,
        #[serde(default)]
        detail: serde_json::Value,
        at: String,
    },
    /// `kind` on `node` was undone.
    Undo {
        kind: FaultKind,
        node: NodeId,
        at: String,
    },
    /// Everything on every node was healed: nothing before this line is in force.
    Healed { at: String },
}

/// A fault that may still be in force.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outstanding {
    pub kind: FaultKind,
    pub node: NodeId,
    pub detail: serde_json::Value,
    pub since: String,
}

/// An append-only, fsync'd ledger file.
pub struct Ledger {
    path: PathBuf,
    file: Mutex<File>,
}

fn now() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:.3}", since_epoch.as_secs_f64())
}

impl Ledger {
    /// Opens (creating) the ledger at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Ledger> {
        let cannot = || {
            format!(
                "cannot open the fault ledger {} (is the cluster's state directory writable?)",
                path.display()
            )
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(cannot)?;
        // A line torn by a controller that died mid-write is ended, so the next entry is not
        // glued onto it (and lost with it).
        if !ends_with_newline(&mut file).with_context(cannot)? {
            file.write_all(b"\n").with_context(cannot)?;
        }
        Ok(Ledger {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, entry: &Entry) -> anyhow::Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends entries with one write and one fsync: a fault on five nodes costs one disk flush.
    fn append_all(&self, entries: &[Entry]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut lines = String::new();
        for entry in entries {
            lines.push_str(&serde_json::to_string(entry)?);
            lines.push('\n');
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the fault ledger {}", self.path.display()))
    }

    /// Records that `kind` is about to be applied on `node`. Call before applying it: a fault
    /// that is not in the ledger must never reach a node.
    pub fn apply(
        &self,
        kind: FaultKind,
        node: &str,
        detail: serde_json::Value,
    ) -> anyhow::Result<()> {
        self.append(&Entry::Apply {
            kind,
            node: node.to_string(),
            detail,
            at: now(),
        })
    }

    /// Records that `kind` on `node` was undone. Call after undoing it.
    pub fn undo(&self, kind: FaultKind, node: &str) -> anyhow::Result<()> {
        self.append(&Entry::Undo {
            kind,
            node: node.to_string(),
            at: now(),
        })
    }

    /// [`Ledger::apply`] for several nodes at once.
    pub fn apply_all(
        &self,
        kind: FaultKind,
        faults: Vec<(NodeId, serde_json::Value)>,
    ) -> anyhow::Result<()> {
        let at = now();
        let entries: Vec<Entry> = faults
            .into_iter()
            .map(|(node, detail)| Entry::Apply {
                kind,
                node,
                detail,
                at: at.clone(),
            })
            .collect();
        self.append_all(&entries)
    }

    /// [`Ledger::undo`] for several nodes at once.
    pub fn undo_all(&self, kind: FaultKind, nodes: &[NodeId]) -> anyhow::Result<()> {
        let at = now();
        let entries: Vec<Entry> = (nodes.iter())
            .map(|node| Entry::Undo {
                kind,
                node: node.clone(),
                at: at.clone(),
            })
            .collect();
        self.append_all(&entries)
    }

    /// Records that every node was healed completely.
    pub fn healed(&self) -> anyhow::Result<()> {
        self.append(&Entry::Healed { at: now() })
    }

    /// The faults that may still be in force, from the file as it is now.
    pub fn outstanding(&self) -> anyhow::Result<Vec<Outstanding>> {
        read_outstanding(&self.path)
    }
}

/// True if `file` is empty or ends with a newline.
fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// The faults the ledger at `path` says may still be in force (none if there is no ledger).
pub fn read_outstanding(path: &Path) -> anyhow::Result<Vec<Outstanding>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        match serde_json::from_str::<Entry>(&line) {
            Ok(entry) => entries.push(entry),
            // A torn line (the controller died while writing it): only ever the last one, and
            // its fault was never applied, since applying waits for the write.
            Err(_) if line.trim().is_empty() => {}
            Err(e) => tracing::warn!("skipping a damaged ledger line in {}: {e}", path.display()),
        }
    }
    Ok(fold(&entries))
}

/// What is in force after `entries`: the latest apply of each (kind, node) not since undone.
pub fn fold(entries: &[Entry]) -> Vec<Outstanding> {
    let mut open: BTreeMap<(FaultKind, NodeId), Outstanding> = BTreeMap::new();
    for entry in entries {
        match entry {
            Entry::Apply {
                kind,
                node,
                detail,
                at,
            } => {
                open.insert(
                    (*kind, node.clone()),
                    Outstanding {
                        kind: *kind,
                        node: node.clone(),
                        detail: detail.clone(),
                        since: at.clone(),
                    },
                );
            }
            Entry::Undo { kind, node, .. } => {
                open.remove(&(*kind, node.clone()));
            }
            Entry::Healed { .. } => open.clear(),
        }
    }
    open.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undone_and_healed_faults_are_not_outstanding() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.jsonl")).unwrap();
        ledger
            .apply(FaultKind::Partition, "n1", json!(["10.0.0.3"]))
            .unwrap();
        ledger.apply(FaultKind::Pause, "n2", json!(null)).unwrap();
        ledger.apply(FaultKind::Clock, "n3", json!(500)).unwrap();
        ledger.undo(FaultKind::Pause, "n2").unwrap();
        let open = ledger.outstanding().unwrap();
        let kinds: Vec<_> = open.iter().map(|o| (o.kind, o.node.as_str())).collect();
        assert_eq!(
            kinds,
            vec![(FaultKind::Partition, "n1"), (FaultKind::Clock, "n3")]
        );
        ledger.healed().unwrap();
        assert!(ledger.outstanding().unwrap().is_empty());
        ledger.apply(FaultKind::Kill, "n1", json!(null)).unwrap();
        assert_eq!(ledger.outstanding().unwrap().len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_missing_ledger_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        assert!(read_outstanding(&path).unwrap().is_empty());
        let ledger = Ledger::open(&path).unwrap();
        ledger.apply(FaultKind::Loss, "n4", json!(0.2)).unwrap();
        drop(ledger);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"op\":\"apply\",\"kind\":\"pa").unwrap();
        let open = read_outstanding(&path).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].kind, FaultKind::Loss);
        // The next controller's entries are not glued onto the torn line.
        let ledger = Ledger::open(&path).unwrap();
        ledger.apply(FaultKind::Pause, "n2", json!(null)).unwrap();
        assert_eq!(ledger.outstanding().unwrap().len(), 2);
    }

    #[test]
    fn the_latest_apply_of_a_fault_wins() {
        let at = || "0".to_string();
        let entries = vec![
            Entry::Apply {
                kind: FaultKind::Clock,
                node: "n1".into(),
                detail: json!(100),
                at: at(),
            },
            Entry::Apply {
                kind: FaultKind::Clock,
                node: "n1".into(),
                detail: json!(-300),
                at: at(),
            },
        ];
        let open = fold(&entries);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].detail, json!(-300));
    }
}
