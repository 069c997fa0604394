//! A TCP link proxy: one network link of a local cluster, with faults per direction.
//!
//! A node (or client) reaches a peer at the proxy's address; the proxy forwards to the peer.
//! Bytes from the connecting side to the upstream travel [`Direction::Forward`], the upstream's
//! answers [`Direction::Backward`]. Each direction can be faulted on its own:
//!
//! - **Blackholed**, like an iptables DROP rule under TCP: nothing gets through, and an open
//!   connection stalls (the proxy stops reading it) and resumes intact at the heal, as TCP's
//!   retransmissions would make it; no message is ever torn. A new connection is accepted but never reaches
//!   the upstream while the forward direction is cut, so callers hang until their own timeouts
//!   fire, exactly as across a real partition. A connection whose only backward direction is cut
//!   is opened, so a one-way partition stays one-way at the message level (the upstream hears
//!   the caller, the caller never hears back) instead of degenerating into a full cut as a strict
//!   TCP handshake would. Healing restores forwarding for new and open connections.
//! - **Degraded** by a [`LinkQuality`]: each chunk read is delayed by `latency` ± uniform
//!   `jitter` and never reordered (delivered at max(previous delivery, now + delay)). Loss is
//!   emulated the way TCP experiences it, since the nodes speak JSON lines over TCP and must see
//!   an intact stream: with probability `loss` a chunk is "lost" and held for a retransmission
//!   timeout (200 ms, doubling for each consecutive loss of the same chunk, capped), holding
//!   back everything behind it (head-of-line blocking), then delivered.
//!
//! [`daemon`] runs a set of these proxies inside a node, steered by a faults file, for nodes
//! whose kernel lacks tc netem.

pub mod daemon;
mod pump;
#[cfg(test)]
mod tests;

use crate::control::LinkQuality;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Which way bytes travel through a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the side that connected to the proxy, to the upstream.
    Forward,
    /// From the upstream back to the side that connected.
    Backward,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Forward, Direction::Backward];
}

/// One direction's faults.
#[derive(Default)]
struct Faults {
    blackholed: AtomicBool,
    quality: Mutex<LinkQuality>,
}

impl Faults {
    fn blackholed(&self) -> bool {
        self.blackholed.load(Ordering::SeqCst)
    }

    fn quality(&self) -> LinkQuality {
        *self.quality.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct LinkState {
    /// Where connections go; read at each new connection, so a restarted peer may move.
    upstream: Mutex<String>,
    forward: Faults,
    backward: Faults,
    /// Woken whenever the forward direction is healed, for connections waiting to open.
    healed: Notify,
}

impl LinkState {
    fn upstream(&self) -> std::sync::MutexGuard<'_, String> {
        self.upstream.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self, direction: Direction) -> &Faults {
        match direction {
            Direction::Forward => &self.forward,
            Direction::Backward => &self.backward,
        }
    }
}

/// A running proxy; dropping it closes the listener and every connection through it.
pub struct LinkProxy {
    addr: SocketAddr,
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
        let state = Arc::new(LinkState {
            upstream: Mutex::new(upstream.into()),
            forward: Faults::default(),
            backward: Faults::default(),
            healed: Notify::new(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, state.clone()));
        Ok(LinkProxy { addr, state, tasks })
    }

    /// Where nodes should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> String {
        self.state.upstream().clone()
    }

    /// Sends new connections to `upstream` from now on (open ones stay where they are): for a
    /// peer restarted on another port.
    pub fn set_upstream(&self, upstream: impl Into<String>) {
        *self.state.upstream() = upstream.into();
    }

    /// Starts (true) or stops (false) dropping everything on this link, both directions.
    pub fn set_blackholed(&self, on: bool) {
        for direction in Direction::BOTH {
            self.set_direction_blackholed(direction, on);
        }
    }

    /// Starts (true) or stops (false) dropping the bytes travelling `direction`.
    pub fn set_direction_blackholed(&self, direction: Direction, on: bool) {
        self.state
            .faults(direction)
            .blackholed
            .store(on, Ordering::SeqCst);
        if !on {
            self.state.healed.notify_waiters();
        }
    }

    /// True if both directions are blackholed (the link is fully cut).
    pub fn is_blackholed(&self) -> bool {
        Direction::BOTH
            .iter()
            .all(|&d| self.is_direction_blackholed(d))
    }

    pub fn is_direction_blackholed(&self, direction: Direction) -> bool {
        self.state.faults(direction).blackholed()
    }

    /// Delays and loses the bytes travelling `direction` as `quality` says, from the next chunk
    /// on (a perfect quality restores the direction). Refuses a loss outside 0..=1.
    pub fn set_quality(&self, direction: Direction, quality: LinkQuality) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&quality.loss) {
            anyhow::bail!(
                "link loss must be a share between 0 and 1 (e.g. 0.1 for 10%), not {}",
                quality.loss
            );
        }
        *self
            .state
            .faults(direction)
            .quality
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = quality;
        Ok(())
    }

    pub fn quality(&self, direction: Direction) -> LinkQuality {
        self.state.faults(direction).quality()
    }

    /// Removes every fault, both directions: no blackhole, perfect quality.
    pub fn heal(&self) {
        for direction in Direction::BOTH {
            *self
                .state
                .faults(direction)
                .quality
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = LinkQuality::default();
        }
        self.set_blackholed(false);
    }

    /// Stops the proxy now (also done on drop).
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<LinkState>) {
    let mut connections = JoinSet::new();
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(
                    "link proxy on {:?}: accept failed: {e}",
                    listener.local_addr()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = inbound.set_nodelay(true);
        connections.spawn(connect(inbound, state.clone()));
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

/// Opens the upstream side of one accepted connection and runs it until it ends.
async fn connect(inbound: TcpStream, state: Arc<LinkState>) {
    // A connection opened across a partition hangs until the partition heals. Register for the
    // wake-up before looking at the flag, so a heal in between is not missed.
    loop {
        let healed = state.healed.notified();
        tokio::pin!(healed);
        healed.as_mut().enable();
        if !state.forward.blackholed() {
            break;
        }
        healed.await;
    }
    let upstream = state.upstream().clone();
    let Ok(outbound) = TcpStream::connect(&upstream).await else {
        return; // the peer is down: close, like a refused connection
    };
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    // Each direction ends on its own (a FIN is passed on once its queue is delivered); an
    // error in either ends both, like a reset.
    let _ = tokio::try_join!(
        pump::run(in_read, out_write, &state.forward, &state.healed),
        pump::run(out_read, in_write, &state.backward, &state.healed),
    );
}
