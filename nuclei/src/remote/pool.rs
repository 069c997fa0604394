//! Sessions to one node: connecting (host key checked before we authenticate), pooling, and
//! retrying operations whose session turned out dead.
//!
//! Sessions live either idle in the pool or with the holder of a semaphore permit. A holder that
//! connects afresh first drops one idle session, so there are never more than `max_sessions`.

use super::{Inner, Remote, MAX_BACKOFF};
use anyhow::{anyhow, Context};
use nix::poll::{poll, PollFd, PollFlags};
use ssh2::{BlockDirections, ErrorCode, HostKeyType, Session};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

// libssh2 error codes that mean the server answered and said no (libssh2.h).
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_AUTHENTICATION_FAILED: i32 = -18;
const LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED: i32 = -19;

/// How one attempt at an operation failed, which decides what happens next.
pub(super) enum Attempt {
    /// The session is dead and the operation can safely run again: retry on a fresh session.
    Retry(anyhow::Error),
    /// The server refused our key: not retried, except by `wait_ready` (keys may come later).
    Refused(anyhow::Error),
    /// Give up now; `keep` says whether the session is still fit for the pool.
    Fail { error: anyhow::Error, keep: bool },
}

/// One authenticated session and a handle on its socket.
pub(super) struct Conn {
    pub session: Session,
    socket: TcpStream,
}

impl Conn {
    /// Cuts the TCP connection, so every later libssh2 call on it fails at once: freeing a
    /// channel otherwise waits for sshd, which holds it open until the command exits.
    pub fn kill(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Waits until the socket can move data the way libssh2 last wanted to, or `until` passes;
    /// at most 50 ms, in case libssh2 holds data it has not handed out yet.
    pub fn wait_io(&self, until: Instant) {
        let events = match self.session.block_directions() {
            BlockDirections::Outbound => PollFlags::POLLOUT,
            BlockDirections::Both => PollFlags::POLLIN | PollFlags::POLLOUT,
            BlockDirections::Inbound | BlockDirections::None => PollFlags::POLLIN,
        };
        let left = until.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(50) as u16;
        let _ = poll(&mut [PollFd::new(self.socket.as_fd(), events)], ms);
    }

    /// Gives the session up and asks for another attempt on a fresh one.
    pub fn retry(&self, error: anyhow::Error) -> Attempt {
        self.kill();
        Attempt::Retry(error)
    }

    /// Gives the session and the operation up.
    pub fn fail(&self, error: anyhow::Error) -> Attempt {
        self.kill();
        Attempt::Fail { error, keep: false }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) struct Pool {
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(max_sessions: usize) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(max_sessions)),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which session an attempt uses.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    /// An idle one if there is one.
    Pooled,
    /// A new one (dropping one idle session to stay within `max_sessions`).
    Fresh,
    /// A new one, dropping every idle session: after one died, the others likely did too.
    FreshOnly,
}

impl Remote {
    /// Runs `op` on a session of this node, retrying on a fresh session while `op` (or the
    /// connect before it) says that is safe. `fresh` skips the idle sessions on the first try.
    pub(super) async fn run<T, F>(&self, fresh: bool, op: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Fn(&Conn) -> Result<T, Attempt> + Send + Sync + 'static,
    {
        let op = Arc::new(op);
        let options = &self.inner.options;
        let _permit = self.inner.pool.slots.acquire().await.expect("never closed");
        let mut backoff = options.backoff;
        let mut attempt = 0;
        loop {
            let how = match (attempt, fresh) {
                (0, false) => Use::Pooled,
                (0, true) => Use::Fresh,
                _ => Use::FreshOnly,
            };
            let error = match self.attempt(how, options.connect_timeout, op.clone()).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Retry(error)) => error,
                Err(Attempt::Refused(error) | Attempt::Fail { error, .. }) => return Err(error),
            };
            if attempt >= options.retries {
                return Err(error.context(format!(
                    "giving up on {} after {} attempts",
                    self.inner.label,
                    attempt + 1
                )));
            }
            tracing::debug!(node = self.node(), attempt, error = %format!("{error:#}"), "retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// Connects once (no retries) and pools the session, for `wait_ready`.
    pub(super) async fn attempt_connect(&self, timeout: Duration) -> Result<(), Attempt> {
        let _permit = self.inner.pool.slots.acquire().await.expect("never closed");
        self.attempt(Use::Fresh, timeout, Arc::new(|_: &Conn| Ok(())))
            .await
    }

    /// One try of `op`, on the blocking pool. The caller holds a permit.
    async fn attempt<T, F>(
        &self,
        how: Use,
        connect_timeout: Duration,
        op: Arc<F>,
    ) -> Result<T, Attempt>
    where
        T: Send + 'static,
        F: Fn(&Conn) -> Result<T, Attempt> + Send + Sync + 'static,
    {
        let (reuse, discard) = {
            let mut idle = self.inner.pool.idle();
            match how {
                Use::Pooled => match idle.pop() {
                    Some(conn) => (Some(conn), Vec::new()),
                    None => (None, Vec::new()),
                },
                Use::Fresh => (None, idle.pop().into_iter().collect()),
                Use::FreshOnly => (None, std::mem::take(&mut *idle)),
            }
        };
        let inner = self.inner.clone();
        let (kept, result) = tokio::task::spawn_blocking(move || {
            drop(discard);
            let conn = match reuse {
                Some(conn) => conn,
                None => match connect(&inner, connect_timeout) {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            match op(&conn) {
                Ok(value) => (Some(conn), Ok(value)),
                Err(Attempt::Fail { error, keep: true }) => {
                    (Some(conn), Err(Attempt::Fail { error, keep: true }))
                }
                // Dropped here, on the blocking thread, as freeing a session may block.
                Err(e) => (None, Err(e)),
            }
        })
        .await
        .unwrap_or_else(|e| {
            let error = anyhow!("SSH operation on {} panicked: {e}", self.inner.label);
            (None, Err(Attempt::Fail { error, keep: false }))
        });
        if let Some(conn) = kept {
            self.inner.pool.idle().push(conn);
        }
        result
    }
}

/// Opens and authenticates a session. The host key is checked before authenticating, so our
/// key never goes to a machine we do not trust.
fn connect(inner: &Inner, timeout: Duration) -> Result<Conn, Attempt> {
    let target = &inner.target;
    let label = &inner.label;
    let start = Instant::now();
    if !target.key.is_file() {
        return Err(Attempt::Fail {
            error: anyhow!(
                "private key {} for {label} not found: create it (ssh-keygen -t ed25519) or fix \
                 the path",
                target.key.display()
            ),
            keep: false,
        });
    }
    let host_port = format!("{}:{}", target.host, target.port);
    let unreachable = |e: &dyn std::fmt::Display| {
        Attempt::Retry(anyhow!(
            "connecting to {label}: {e}; is the node up and its sshd listening?"
        ))
    };
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(&e))?
        .collect();
    let mut tcp = Err(anyhow!("{} resolves to no address", target.host));
    for addr in &addrs {
        tcp = TcpStream::connect_timeout(addr, timeout).map_err(anyhow::Error::from);
        if tcp.is_ok() {
            break;
        }
    }
    let tcp = tcp.map_err(|e| unreachable(&e))?;
    let _ = tcp.set_nodelay(true);
    let socket = tcp.try_clone().map_err(|e| unreachable(&e))?;
    let mut session = Session::new().map_err(|e| Attempt::Fail {
        error: anyhow!("creating an SSH session: {e}"),
        keep: false,
    })?;
    session.set_tcp_stream(tcp);
    session.set_timeout(millis(timeout));
    session
        .handshake()
        .map_err(|e| Attempt::Retry(anyhow!("SSH handshake with {label}: {e}")))?;
    let conn = Conn { session, socket };

    let (key, key_type) = conn
        .session
        .host_key()
        .ok_or_else(|| conn.fail(anyhow!("{label} presented no host key")))?;
    inner
        .host_keys
        .check(&host_port, key_type_name(key_type), key)
        .with_context(|| format!("refusing to log in to {label}"))
        .map_err(|e| conn.fail(e))?;

    let user = &target.user;
    if let Err(e) = conn
        .session
        .userauth_pubkey_file(user, None, &target.key, None)
    {
        let key = target.key.display();
        return Err(match e.code() {
            ErrorCode::Session(LIBSSH2_ERROR_FILE) => conn.fail(anyhow!(
                "cannot use private key {key} for {label}: {e}; it must be an unencrypted \
                 OpenSSH key (ssh-keygen -t ed25519 -N '')"
            )),
            ErrorCode::Session(
                LIBSSH2_ERROR_AUTHENTICATION_FAILED | LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED,
            ) => {
                conn.kill();
                Attempt::Refused(anyhow!(
                    "{label} rejected key {key} for user {user} ({e}): add {key}.pub to \
                     ~{user}/.ssh/authorized_keys on the node"
                ))
            }
            _ => conn.retry(anyhow!("logging in to {label}: {e}")),
        });
    }
    if !conn.session.authenticated() {
        conn.kill();
        return Err(Attempt::Refused(anyhow!(
            "{label} did not accept key {} for user {user}",
            target.key.display()
        )));
    }
    tracing::debug!(node = %target.node, ms = start.elapsed().as_millis() as u64, "ssh connected");
    Ok(conn)
}

/// The name OpenSSH uses for a host key type, as written in the host key file.
fn key_type_name(key_type: HostKeyType) -> &'static str {
    match key_type {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// A libssh2 timeout: at least 1 ms, since 0 means wait forever.
pub(super) fn millis(d: Duration) -> u32 {
    d.as_millis().clamp(1, u32::MAX as u128) as u32
}
