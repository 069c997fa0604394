//! Trust-on-first-use host keys, so a test talks to the same machines it started with.
//!
//! The store is a plain file, one line per address: `<host>:<port> <key-type> <base64 key>`.
//! A key seen for the first time is appended (and fsynced, so a crash right after cannot forget
//! it); a different key later is refused, because it means either a recreated node or a different
//! machine at that address, and only a person can tell which.

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A host key store backed by a file (see the module docs for the format).
#[derive(Debug)]
pub struct HostKeys {
    path: PathBuf,
    /// `host:port` → (key type, base64 key). Held while appending, so two first connections to
    /// one address cannot both record a key.
    known: Mutex<HashMap<String, (String, String)>>,
}

impl HostKeys {
    /// Loads the store; a missing file is an empty store (it is created on the first record).
    pub fn open(path: &Path) -> anyhow::Result<Arc<HostKeys>> {
        let mut known = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let [host_port, key_type, key] = fields[..] else {
                        bail!(
                            "{}:{}: expected `<host>:<port> <key-type> <base64 key>`, got {line:?}; \
                             fix or delete that line",
                            path.display(),
                            i + 1
                        );
                    };
                    known.insert(
                        host_port.to_string(),
                        (key_type.to_string(), key.to_string()),
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("reading host keys {}", path.display()))
            }
        }
        Ok(Arc::new(HostKeys {
            path: path.to_path_buf(),
            known: Mutex::new(known),
        }))
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts `key` for `host_port` if it is the recorded one, or records it if there is none.
    pub fn check(&self, host_port: &str, key_type: &str, key: &[u8]) -> anyhow::Result<()> {
        let encoded = BASE64.encode(key);
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known_type, known_key)) = known.get(host_port) {
            if *known_type == key_type && *known_key == encoded {
                return Ok(());
            }
            bail!(
                "host key mismatch for {host_port}: {} records {known_type} {known_key}, \
                 but the server presented {key_type} {encoded}. Either the node was recreated \
                 (new host keys): remove the `{host_port}` line from {} and retry; or a different \
                 machine answers at that address: check the address before trusting it",
                self.path.display(),
                self.path.display()
            );
        }
        self.append(host_port, key_type, &encoded)?;
        known.insert(host_port.to_string(), (key_type.to_string(), encoded));
        Ok(())
    }

    fn append(&self, host_port: &str, key_type: &str, encoded: &str) -> anyhow::Result<()> {
        let context = || {
            format!(
                "recording the host key of {host_port} in {}",
                self.path.display()
            )
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(context)?;
        // One write per line, so a concurrent reader never sees half a line.
        file.write_all(format!("{host_port} {key_type} {encoded}\n").as_bytes())
            .with_context(context)?;
        file.sync_all().with_context(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_on_first_use_and_accepts_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        keys.check("10.0.0.2:22", "ssh-ed25519", b"key one")
            .unwrap();
        keys.check("10.0.0.2:22", "ssh-ed25519", b"key one")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("10.0.0.2:22 ssh-ed25519 {}\n", BASE64.encode(b"key one"))
        );
    }

    #[test]
    fn refuses_a_different_key_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        keys.check("h:22", "ssh-ed25519", b"old").unwrap();
        let err = keys.check("h:22", "ssh-ed25519", b"new").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("host key mismatch for h:22"), "{msg}");
        assert!(msg.contains("remove the `h:22` line"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        // A different key type for the address is a mismatch too.
        assert!(keys.check("h:22", "ssh-rsa", b"old").is_err());
        // Other addresses are independent.
        keys.check("h:2222", "ssh-ed25519", b"new").unwrap();
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        HostKeys::open(&path)
            .unwrap()
            .check("a:22", "ssh-ed25519", b"k")
            .unwrap();
        let reopened = HostKeys::open(&path).unwrap();
        reopened.check("a:22", "ssh-ed25519", b"k").unwrap();
        assert!(reopened.check("a:22", "ssh-ed25519", b"other").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn rejects_malformed_lines_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "# comment\n\nh:22 ssh-ed25519\n").unwrap();
        let msg = format!("{:#}", HostKeys::open(&path).unwrap_err());
        assert!(msg.contains("known_hosts:3"), "{msg}");
    }

    #[test]
    fn concurrent_first_checks_record_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let keys = &keys;
                    s.spawn(move || {
                        // Half the threads present key A, half key B: exactly one key wins.
                        let key: &[u8] = if i % 2 == 0 { b"A" } else { b"B" };
                        keys.check("race:22", "ssh-ed25519", key).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 8);
        // Many addresses at once all land, one line each.
        std::thread::scope(|s| {
            for i in 0..16 {
                let keys = &keys;
                s.spawn(move || {
                    keys.check(&format!("h{i}:22"), "ssh-ed25519", b"k")
                        .unwrap()
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 17);
        let reopened = HostKeys::open(&path).unwrap();
        assert_eq!(reopened.known.lock().unwrap().len(), 17);
    }
}
