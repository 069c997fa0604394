//! The store (DESIGN.md §8): `store/<test>/<stamp>/` with `test.json`, `history.jsonl`,
//! `results.json`, `fissure.log` and `nodes/<n>/`, plus `store/latest` and `store/<test>/latest`
//! pointing at the newest run.

use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `root/<test>/<stamp>/` (stamp: UTC start time, e.g. `20261201T184512.123Z`,
    /// suffixed if two runs start in the same millisecond) and its `nodes/` folder.
    pub fn create(root: &Path, test: &str) -> anyhow::Result<RunDir> {
        let test_dir = root.join(test);
        std::fs::create_dir_all(&test_dir).with_context(|| {
            format!(
                "cannot create the store folder {}; pass --store DIR",
                test_dir.display()
            )
        })?;
        let stamp = stamp(SystemTime::now());
        let mut path = test_dir.join(&stamp);
        // `create_dir` fails on an existing folder, so two runs never share one.
        for n in 2.. {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    path = test_dir.join(format!("{stamp}-{n}"));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create run folder {}", path.display()))
                }
            }
        }
        std::fs::create_dir_all(path.join("nodes"))
            .with_context(|| format!("cannot create run folder {}", path.display()))?;
        Ok(RunDir { path })
    }

    pub fn history(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }
    pub fn test_json(&self) -> PathBuf {
        self.path.join("test.json")
    }
    pub fn results_json(&self) -> PathBuf {
        self.path.join("results.json")
    }
    pub fn log(&self) -> PathBuf {
        self.path.join("fissure.log")
    }
    pub fn nodes(&self) -> PathBuf {
        self.path.join("nodes")
    }

    /// Writes `value` as pretty JSON to `name` in the run folder, atomically (a reader never
    /// sees half a file: written beside, then renamed).
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let target = self.path.join(name);
        let partial = self.path.join(format!(".{name}.partial"));
        let mut text = serde_json::to_string_pretty(value).context("serializing")?;
        text.push('\n');
        std::fs::write(&partial, text)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &target)
            .with_context(|| format!("cannot write {}", target.display()))
    }

    /// Points `root/latest` and `root/<test>/latest` at this run, as relative symlinks. Called
    /// once the run has a history, so `latest` never names a run that never started. Best
    /// effort: a store on a file system without symlinks still works, it just has no `latest`.
    pub fn link_latest(&self) {
        let (Some(stamp), Some(test_dir)) = (self.path.file_name(), self.path.parent()) else {
            return;
        };
        let (Some(test), Some(root)) = (test_dir.file_name(), test_dir.parent()) else {
            return;
        };
        let links = [
            (root.join("latest"), Path::new(test).join(stamp)),
            (test_dir.join("latest"), PathBuf::from(stamp)),
        ];
        for (link, target) in links {
            let partial = link.with_file_name(format!(".latest.{}.partial", std::process::id()));
            let _ = std::fs::remove_file(&partial);
            let linked = std::os::unix::fs::symlink(&target, &partial)
                .and_then(|()| std::fs::rename(&partial, &link));
            if let Err(e) = linked {
                tracing::warn!("cannot point {} at the new run: {e}", link.display());
            }
        }
    }
}

/// `20261201T184512.123Z`: sortable, and safe in any file system.
fn stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now)
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_get_their_own_folders_and_latest_follows() {
        let root = tempfile::tempdir().unwrap();
        let a = RunDir::create(root.path(), "raft-kv-register").unwrap();
        let b = RunDir::create(root.path(), "raft-kv-register").unwrap();
        a.link_latest();
        b.link_latest();
        assert_ne!(a.path, b.path);
        assert!(a.nodes().is_dir());
        let latest = std::fs::canonicalize(root.path().join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        let per_test = root.path().join("raft-kv-register/latest");
        assert_eq!(
            std::fs::canonicalize(per_test).unwrap(),
            std::fs::canonicalize(&b.path).unwrap()
        );
        b.write_json("results.json", &serde_json::json!({"valid": true}))
            .unwrap();
        let text = std::fs::read_to_string(b.results_json()).unwrap();
        assert!(text.contains("\"valid\": true"));
    }

    #[test]
    fn stamps_sort_and_have_no_colons() {
        let s = stamp(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500));
        assert_eq!(s, "19700101T000001.500Z");
    }
}
