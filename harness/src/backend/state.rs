//! A cluster's state directory: what Fissure must remember about a cluster between commands
//! (`fissure cluster up`, `run --cluster`, `heal`, `down`), and what must survive a controller
//! that was killed: the nodes and their addresses, the cluster's SSH key pair, the host keys
//! pinned on first use, and the fault ledger.
//!
//! It lives outside the store (`$FISSURE_STATE_DIR`, else `$XDG_STATE_HOME/fissure`, else
//! `~/.local/state/fissure`), readable by its owner only: the private key must never land in a
//! store that is uploaded as a CI artifact.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One node of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub id: String,
    /// The container (docker) or host name.
    pub container: String,
    /// Where the peers and the clients reach it.
    pub ip: String,
    /// How the controller logs in, when not as root with the cluster's own key at `ip:22`
    /// (docker): the hosts of an SSH or Vagrant cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshLogin>,
}

/// How to log in to a host the user gave: its key stays where the user keeps it, and only its
/// path is written down.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SshLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
}

/// `cluster.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    pub backend: String,
    pub image: String,
    pub network: String,
    pub subnet: String,
    pub nodes: Vec<NodeRecord>,
    /// How latency is injected: "netem:<device>" or "link-daemon".
    pub latency: String,
    /// Made for one run and removed after it.
    pub ephemeral: bool,
    pub created: String,
    /// vagrant: the folder of the machines' Vagrantfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vagrant_dir: Option<PathBuf>,
    /// The machines own their clocks (VMs): clock faults move the machine's real clock, as
    /// Jepsen's do, rather than a libfaketime file. Never for containers or namespaces, which
    /// share the host's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_clocks: bool,
}

/// Where every cluster's state directory lives.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FISSURE_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("fissure");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".local/state/fissure")
}

/// A cluster name: it becomes container, network and directory names.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "bad cluster name {name:?}: use 1 to 40 letters, digits, '-' or '_', starting with a \
             letter or digit"
        );
    }
    Ok(())
}

pub fn dir(name: &str) -> PathBuf {
    root().join("clusters").join(name)
}

/// The names of every cluster with a state directory.
pub fn list() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("clusters"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("cluster.json").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl ClusterState {
    pub fn dir(&self) -> PathBuf {
        dir(&self.name)
    }

    /// The cluster's private key (its `.pub` beside it).
    pub fn key(&self) -> PathBuf {
        self.dir().join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir().join("ledger.jsonl")
    }

    /// Where the `fissure` binary the nodes run is kept (mounted read-only into containers).
    pub fn bin_dir(&self) -> PathBuf {
        self.dir().join("bin")
    }

    pub fn load(name: &str) -> anyhow::Result<ClusterState> {
        check_name(name)?;
        let path = dir(name).join("cluster.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let known = list();
                bail!(
                    "no cluster named {name:?} (no {}); {}",
                    path.display(),
                    if known.is_empty() {
                        "start one with `fissure cluster up --backend docker`".to_string()
                    } else {
                        format!("known clusters: {}", known.join(", "))
                    }
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove the cluster with `fissure cluster down {name}`",
                path.display()
            )
        })
    }

    /// Writes `cluster.json` atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = self.dir().join("cluster.json");
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_string_pretty(self)?)
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Makes the state directory (owner only) and the cluster's key pair.
    pub fn create_dir_and_key(&self) -> anyhow::Result<()> {
        self.create_dir()?;
        if !self.key().is_file() {
            generate_key(&self.key(), &format!("fissure-{}", self.name))?;
        }
        Ok(())
    }

    /// Makes the state directory, readable by its owner only.
    pub fn create_dir(&self) -> anyhow::Result<()> {
        let dir = self.dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| {
                format!(
                    "cannot create the cluster state directory {}",
                    dir.display()
                )
            })?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(self.bin_dir())?;
        Ok(())
    }

    /// The public key, one line.
    pub fn public_key(&self) -> anyhow::Result<String> {
        let path = self.key().with_extension("pub");
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string())
    }
}

/// Use of a cluster by one controller: a `fissure run` holds it while its target runs, and
/// `fissure heal` and `cluster down` refuse to act under a live run (which heals itself on
/// exit) unless forced. An advisory lock on `<state>/lock`, which the kernel drops when the
/// holder dies, even by SIGKILL: a crashed controller never leaves the cluster locked.
pub struct ClusterLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl ClusterState {
    /// Takes the cluster for `purpose`, or says who has it.
    pub fn lock(&self, purpose: &str) -> anyhow::Result<ClusterLock> {
        lock_dir(&self.dir(), &self.name, purpose)
    }
}

/// Locks `<dir>/lock` for `purpose`, or says who holds it.
fn lock_dir(dir: &Path, name: &str, purpose: &str) -> anyhow::Result<ClusterLock> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            let note = format!("pid {}: {purpose}\n", std::process::id());
            held.set_len(0)?;
            held.rewind()?;
            held.write_all(note.as_bytes())?;
            Ok(ClusterLock { _held: held })
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "cluster {name} is in use ({}): a run heals its own faults when it ends",
                holder.trim()
            )
        }
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// An ed25519 key pair without a passphrase, made by ssh-keygen: the key only ever opens this
/// cluster's throwaway nodes, and it never leaves the state directory.
fn generate_key(path: &Path, comment: &str) -> anyhow::Result<()> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run ssh-keygen to make the cluster's key ({e}): install OpenSSH's client \
                 (Debian: apt-get install openssh-client)"
            )
        })?;
    if !output.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_used_by_one_controller_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path(), "c1", "a run").unwrap();
        let refused = lock_dir(dir.path(), "c1", "heal").err().unwrap();
        let said = format!("{refused:#}");
        assert!(said.contains("in use") && said.contains("a run"), "{said}");
        drop(first);
        assert!(
            lock_dir(dir.path(), "c1", "heal").is_ok(),
            "the lock goes with its holder"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("nightly-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(41)).is_err());
    }
}
