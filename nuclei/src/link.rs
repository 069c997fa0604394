//! A TCP link proxy: one direction of one network link of a local cluster.
//!
//! A node reaches a peer at the proxy's address; the proxy forwards to the peer. Blackholing the
//! link behaves like an iptables DROP rule: bytes sent are silently lost and new connections are
//! accepted but never reach the other side, so callers hang until their own timeouts fire,
//! exactly as across a real partition. Healing restores forwarding for new and open connections.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

struct LinkState {
    blackholed: AtomicBool,
    healed: Notify,
}

/// A running proxy; dropping it closes the listener and every connection through it.
pub struct LinkProxy {
    addr: SocketAddr,
    upstream: String,
    state: Arc<LinkState>,
    tasks: JoinSet<()>,
}

impl LinkProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: impl Into<String>) -> io::Result<LinkProxy> {
        LinkProxy::start_on("127.0.0.1:0", upstream).await
    }

    /// Listens on `listen` and forwards to `upstream`.
    pub async fn start_on(listen: &str, upstream: impl Into<String>) -> io::Result<LinkProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let upstream = upstream.into();
        let state = Arc::new(LinkState {
            blackholed: AtomicBool::new(false),
            healed: Notify::new(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, upstream.clone(), state.clone()));
        Ok(LinkProxy {
            addr,
            upstream,
            state,
            tasks,
        })
    }

    /// Where nodes should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Starts (true) or stops (false) dropping everything on this link.
    pub fn set_blackholed(&self, on: bool) {
        self.state.blackholed.store(on, Ordering::SeqCst);
        if !on {
            self.state.healed.notify_waiters();
        }
    }

    pub fn is_blackholed(&self) -> bool {
        self.state.blackholed.load(Ordering::SeqCst)
    }

    /// Stops the proxy now (also done on drop).
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, state: Arc<LinkState>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let _ = inbound.set_nodelay(true);
        connections.spawn(forward(inbound, upstream.clone(), state.clone()));
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

async fn forward(inbound: TcpStream, upstream: String, state: Arc<LinkState>) {
    // A connection opened across a partition hangs until the partition heals. Register for the
    // wake-up before looking at the flag, so a heal in between is not missed.
    loop {
        let healed = state.healed.notified();
        tokio::pin!(healed);
        healed.as_mut().enable();
        if !state.blackholed.load(Ordering::SeqCst) {
            break;
        }
        healed.await;
    }
    let Ok(outbound) = TcpStream::connect(&upstream).await else {
        return; // the peer is down: close, like a refused connection
    };
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::select! {
        _ = pump(in_read, out_write, &state) => {}
        _ = pump(out_read, in_write, &state) => {}
    }
}

/// Copies bytes one way, dropping them while the link is blackholed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: &LinkState,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if state.blackholed.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> bool {
        stream.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        matches!(
            timeout(Duration::from_millis(300), stream.read_exact(&mut buf)).await,
            Ok(Ok(_))
        )
    }

    #[tokio::test]
    async fn forwards_blackholes_and_heals() {
        let proxy = LinkProxy::start(echo_server().await.to_string())
            .await
            .unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut stream).await);
        proxy.set_blackholed(true);
        assert!(
            !round_trip(&mut stream).await,
            "bytes crossed a blackholed link"
        );
        // A new connection across the partition hangs rather than failing fast.
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(!round_trip(&mut fresh).await);
        proxy.set_blackholed(false);
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut healed).await);
    }
}
