//! Durable state on local disk: an append-only log of JSON lines and small files replaced
//! atomically. Everything is fsync'd before the call returns, so a node acknowledges only what
//! survives a crash (SIGKILL) and a restart.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An append-only log of records, one JSON line each.
pub struct DurableLog {
    path: PathBuf,
    file: File,
}

impl DurableLog {
    /// Opens (creating if needed) the log at `path` and returns it with the records it holds. A
    /// torn last line, left by a crash in the middle of an append, is dropped.
    pub fn open<T: DeserializeOwned>(path: impl Into<PathBuf>) -> io::Result<(DurableLog, Vec<T>)> {
        let path = path.into();
        let mut records = Vec::new();
        let mut good_bytes = 0u64;
        if path.exists() {
            let bytes = fs::read(&path)?;
            // Only newline-terminated lines count: a crash can cut an append anywhere, even
            // right before its newline, and a line without one may be incomplete.
            let mut rest = &bytes[..];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                match serde_json::from_slice(&rest[..end]) {
                    Ok(record) => records.push(record),
                    Err(_) => break,
                }
                good_bytes += end as u64 + 1;
                rest = &rest[end + 1..];
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // Cut anything after the last good record so new appends start on a clean line.
        file.set_len(good_bytes)?;
        file.sync_all()?;
        sync_dir(&path)?;
        Ok((DurableLog { path, file }, records))
    }

    /// Appends records and fsyncs.
    pub fn append<T: Serialize>(&mut self, records: &[T]) -> io::Result<()> {
        let mut buffer = Vec::new();
        for record in records {
            serde_json::to_writer(&mut buffer, record)?;
            buffer.push(b'\n');
        }
        self.file.write_all(&buffer)?;
        self.file.sync_data()
    }

    /// Replaces the whole log with `records` (e.g. Raft truncating a conflicting suffix).
    pub fn rewrite<T: Serialize>(&mut self, records: &[T]) -> io::Result<()> {
        let mut buffer = Vec::new();
        for record in records {
            serde_json::to_writer(&mut buffer, record)?;
            buffer.push(b'\n');
        }
        write_atomic(&self.path, &buffer)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Stores a value as JSON, atomically and durably.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &serde_json::to_vec(value)?)
}

/// Loads a value stored by [`save_json`], or `None` if there is none yet.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_survives_reopen_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut log, records) = DurableLog::open::<u32>(&path).unwrap();
        assert!(records.is_empty());
        log.append(&[1u32, 2]).unwrap();
        drop(log);
        // A crash mid-append leaves half a line.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"3")
            .unwrap();
        let (mut log, records) = DurableLog::open::<u32>(&path).unwrap();
        assert_eq!(records, vec![1, 2]);
        log.append(&[4u32]).unwrap();
        let (_, records) = DurableLog::open::<u32>(&path).unwrap();
        assert_eq!(records, vec![1, 2, 4]);
        // Cut right before a newline: the record parses but is not known to be whole.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"5")
            .unwrap();
        let (mut log, records) = DurableLog::open::<u32>(&path).unwrap();
        assert_eq!(records, vec![1, 2, 4]);
        log.append(&[6u32]).unwrap();
        assert_eq!(DurableLog::open::<u32>(&path).unwrap().1, vec![1, 2, 4, 6]);
    }

    #[test]
    fn rewrite_and_json_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut log, _) = DurableLog::open::<u32>(&path).unwrap();
        log.append(&[1u32, 2, 3]).unwrap();
        log.rewrite(&[1u32]).unwrap();
        log.append(&[9u32]).unwrap();
        assert_eq!(DurableLog::open::<u32>(&path).unwrap().1, vec![1, 9]);
        let state = dir.path().join("state.json");
        assert_eq!(load_json::<(u64, String)>(&state).unwrap(), None);
        save_json(&state, &(3u64, "n1".to_string())).unwrap();
        assert_eq!(load_json(&state).unwrap(), Some((3u64, "n1".to_string())));
    }
}
