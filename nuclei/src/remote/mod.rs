//! Control of real nodes over SSH (DESIGN.md §6): run commands, copy files, on one node
//! ([`Remote`]) or all of them ([`Fleet`]).
//!
//! `ssh2` (libssh2) is blocking, so every call into it runs on tokio's blocking pool, on a
//! session checked out of a per-node pool for that one operation. Up to
//! [`RemoteOptions::max_sessions`] sessions per node run operations side by side. A session that
//! turns out dead (node or sshd restarted) is dropped and the operation retried on a fresh one,
//! but only while it is certain the command has not started: a command is never run twice.
//! Host keys are trusted on first use and pinned in a [`HostKeys`] file, so a test cannot
//! silently drive a machine it did not set up.

mod fleet;
mod host_keys;
mod ops;
mod pool;

pub use fleet::Fleet;
pub use host_keys::HostKeys;

use crate::control::NodeId;
use anyhow::{bail, Context};
use ops::Source;
use pool::{Attempt, Pool};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where one node's sshd is and how to log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub node: NodeId,
    pub host: String,
    pub port: u16,
    /// Anyone but root runs every command through passwordless `sudo -n`: faults need root.
    pub user: String,
    /// Private key file (OpenSSH format, e.g. ed25519 from `ssh-keygen`); never passwords.
    pub key: PathBuf,
}

impl SshTarget {
    /// Whether commands and file transfers go through `sudo -n`.
    pub fn uses_sudo(&self) -> bool {
        self.user != "root"
    }
}

/// Connection tuning for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Longest wait for the TCP connect and the SSH handshake of one attempt.
    pub connect_timeout: Duration,
    /// Most sessions open to the node at once; more callers wait for one to come free.
    pub max_sessions: usize,
    /// How often a connection failure is retried (so `retries + 1` attempts in all).
    pub retries: u32,
    /// First pause between attempts; doubles each time, capped at 2 s.
    pub backoff: Duration,
    /// Longest a file transfer may stall (no progress) before its session is given up.
    pub io_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connect_timeout: Duration::from_secs(5),
            max_sessions: 8,
            retries: 5,
            backoff: Duration::from_millis(100),
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// What a finished command left: its exit code (128 + signal number if a signal killed it, as
/// shells report it) and everything it wrote, decoded as UTF-8 (invalid bytes replaced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One node over SSH. Cheap to clone (handles share one session pool); connects lazily.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    target: SshTarget,
    host_keys: Arc<HostKeys>,
    options: RemoteOptions,
    /// `n1 (root@10.0.0.2:22)`, for messages.
    label: String,
    pool: Pool,
}

/// The longest pause between attempts, so a long outage is still noticed quickly once over.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The longest pause between `wait_ready`'s attempts: a refused connection costs nothing, and
/// a node that just booted should be noticed at once.
const READY_POLL: Duration = Duration::from_millis(500);

impl Remote {
    pub fn new(target: SshTarget, host_keys: Arc<HostKeys>, options: RemoteOptions) -> Remote {
        let label = format!(
            "{} ({}@{}:{})",
            target.node, target.user, target.host, target.port
        );
        let pool = Pool::new(options.max_sessions.max(1));
        Remote {
            inner: Arc::new(Inner {
                target,
                host_keys,
                options,
                label,
                pool,
            }),
        }
    }

    pub fn node(&self) -> &str {
        &self.inner.target.node
    }

    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// Opens one session now (retrying connection failures) and keeps it in the pool, so
    /// unreachable nodes show up before a test starts rather than in its middle.
    pub async fn connect(&self) -> anyhow::Result<()> {
        self.run(true, |_| Ok(())).await
    }

    /// Keeps trying to connect (at least every 0.5 s) until `limit` has passed, for a node that
    /// is still booting. Only a host key mismatch or a missing key file ends it early; a
    /// rejected login is tried again, since keys are often installed after sshd starts.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = deadline_after(limit);
        let mut backoff = self.inner.options.backoff;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout =
                (self.inner.options.connect_timeout.min(remaining)).max(Duration::from_millis(10));
            let last = match self.attempt_connect(timeout).await {
                Ok(()) => return Ok(()),
                Err(Attempt::Fail { error, .. }) => return Err(error),
                Err(Attempt::Retry(error) | Attempt::Refused(error)) => error,
            };
            if Instant::now() + backoff >= deadline {
                return Err(last.context(format!(
                    "{} did not accept an SSH login within {limit:?}; the last attempt failed \
                     as below",
                    self.inner.label
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(READY_POLL);
        }
    }

    /// Runs `command` on the node (through the login shell, so `sh -c` rules apply) and
    /// returns whatever exit code it had. Errors only if it could not run or finish: connection
    /// trouble (retried while the command cannot have started yet) or `timeout` passing (the
    /// session is then dropped; the command may still be running on the node). `timeout`
    /// counts from the command's start, not the wait for a free session.
    pub async fn exec(&self, command: &str, timeout: Duration) -> anyhow::Result<ExecOutput> {
        self.exec_as_login(&self.as_root(command), timeout).await
    }

    /// `command` as root: itself when logged in as root, else through `sudo -n` (never a
    /// password prompt: a host without passwordless sudo fails at once, and says so).
    fn as_root(&self, command: &str) -> String {
        if self.inner.target.uses_sudo() {
            format!("sudo -n /bin/sh -c {}", shell_quote(command))
        } else {
            command.to_string()
        }
    }

    /// [`Remote::exec`] as the login user, without sudo.
    async fn exec_as_login(&self, command: &str, timeout: Duration) -> anyhow::Result<ExecOutput> {
        let start = Instant::now();
        let cmd = command.to_string();
        let label = self.inner.label.clone();
        let open_timeout = self.inner.options.connect_timeout;
        let result = self
            .run(false, move |conn| {
                ops::exec(conn, &label, &cmd, timeout, open_timeout)
            })
            .await;
        let ms = start.elapsed().as_millis() as u64;
        match &result {
            Ok(out) => tracing::debug!(node = self.node(), command, code = out.code, ms, "exec"),
            Err(e) => {
                tracing::debug!(node = self.node(), command, ms, error = %format!("{e:#}"), "exec failed")
            }
        }
        result
    }

    /// Like [`Remote::exec`], but a non-zero exit is an error too; returns stdout.
    pub async fn exec_ok(&self, command: &str, timeout: Duration) -> anyhow::Result<String> {
        let out = self.exec(command, timeout).await?;
        if out.code != 0 {
            let stderr = tail(out.stderr.trim(), 2000);
            bail!(
                "`{command}` on {} exited with code {}: {}",
                self.inner.label,
                out.code,
                if stderr.is_empty() {
                    "(no stderr)"
                } else {
                    stderr
                }
            );
        }
        Ok(out.stdout)
    }

    /// Copies a local file to `remote_path` with permissions `mode` (e.g. `0o755`). Written to
    /// `remote_path.part` and renamed over, so nobody ever runs a half-written binary (and a
    /// running one is replaced, not overwritten in place).
    pub async fn upload(&self, local: &Path, remote_path: &str, mode: i32) -> anyhow::Result<()> {
        if !local.is_file() {
            bail!(
                "cannot upload {} to {}: no such local file",
                local.display(),
                self.inner.label
            );
        }
        self.put(Source::File(local.to_path_buf()), remote_path, mode)
            .await
            .with_context(|| format!("uploading {} to {}", local.display(), self.inner.label))
    }

    /// Like [`Remote::upload`], from memory.
    pub async fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        remote_path: &str,
        mode: i32,
    ) -> anyhow::Result<()> {
        self.put(Source::Bytes(Arc::new(bytes)), remote_path, mode)
            .await
            .with_context(|| format!("uploading {remote_path} to {}", self.inner.label))
    }

    async fn put(&self, source: Source, remote_path: &str, mode: i32) -> anyhow::Result<()> {
        let start = Instant::now();
        let path = remote_path.to_string();
        let label = self.inner.label.clone();
        let io_timeout = self.inner.options.io_timeout;
        let sudo = self.inner.target.uses_sudo();
        self.run(false, move |conn| {
            ops::upload(conn, &label, &source, &path, mode, io_timeout, sudo)
        })
        .await?;
        tracing::debug!(
            node = self.node(),
            remote_path,
            ms = start.elapsed().as_millis() as u64,
            "uploaded"
        );
        Ok(())
    }

    /// Copies `remote_path` from the node to `local`, through `local.part` and a rename, so a
    /// reader of `local` never sees half a file.
    pub async fn download(&self, remote_path: &str, local: &Path) -> anyhow::Result<()> {
        if self.inner.target.uses_sudo() {
            return self.download_with_sudo(remote_path, local).await;
        }
        self.download_as_login(remote_path, local).await
    }

    /// A file only root may read is copied by root to a file of the login user's first.
    async fn download_with_sudo(&self, remote_path: &str, local: &Path) -> anyhow::Result<()> {
        let staging = ops::staging_path();
        let copy = format!(
            "umask 077; sudo -n /bin/cat -- {} > {}",
            shell_quote(remote_path),
            shell_quote(&staging)
        );
        let timeout = self.inner.options.io_timeout;
        let copied = self.exec_as_login(&copy, timeout).await;
        let result = match copied {
            Ok(out) if out.code == 0 => self.download_as_login(&staging, local).await,
            Ok(out) => Err(anyhow::anyhow!(
                "cannot read {remote_path} on {} through sudo (exit {}): {}",
                self.inner.label,
                out.code,
                out.stderr.trim()
            )),
            Err(e) => Err(e),
        };
        let remove = format!("rm -f -- {}", shell_quote(&staging));
        if let Err(e) = self.exec_as_login(&remove, timeout).await {
            tracing::debug!(node = self.node(), "removing {staging}: {e:#}");
        }
        result
    }

    async fn download_as_login(&self, remote_path: &str, local: &Path) -> anyhow::Result<()> {
        let start = Instant::now();
        let path = remote_path.to_string();
        let to = local.to_path_buf();
        let label = self.inner.label.clone();
        let io_timeout = self.inner.options.io_timeout;
        self.run(false, move |conn| {
            ops::download(conn, &label, &path, &to, io_timeout)
        })
        .await
        .with_context(|| {
            format!(
                "downloading {remote_path} from {} to {}",
                self.inner.label,
                local.display()
            )
        })?;
        tracing::debug!(
            node = self.node(),
            remote_path,
            ms = start.elapsed().as_millis() as u64,
            "downloaded"
        );
        Ok(())
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Remote").field(&self.inner.label).finish()
    }
}

/// `now + d`, or far in the future for a `d` too large to add.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// `s` quoted for a POSIX shell, so paths with spaces or quotes pass through as one word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The last `max` bytes of `s` (on a char boundary): the end of stderr says what went wrong.
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/opt/a b"), "'/opt/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn tails_on_char_boundaries() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aéé", 3), "é");
    }

    #[tokio::test]
    async fn missing_key_file_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let keys = HostKeys::open(&dir.path().join("known_hosts")).unwrap();
        let target = SshTarget {
            node: "n1".into(),
            host: "127.0.0.1".into(),
            port: 1,
            user: "root".into(),
            key: dir.path().join("missing"),
        };
        let remote = Remote::new(target, keys, RemoteOptions::default());
        let start = Instant::now();
        let msg = format!("{:#}", remote.connect().await.unwrap_err());
        assert!(msg.contains("private key") && msg.contains("n1"), "{msg}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
