//! One direction of one proxied connection: each chunk read is stamped with its delivery time
//! and delivered in order at that time.

use super::Faults;
use crate::control::LinkQuality;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// Chunks waiting for their delivery time; beyond this reading waits, so a slow link pushes
/// back on its sender as a full TCP window would.
const QUEUE: usize = 256;
/// Linux's minimum TCP retransmission timeout: what one lost segment costs.
pub const RTO_MIN: Duration = Duration::from_millis(200);
/// The retransmission timeout stops doubling here.
pub const RTO_MAX: Duration = Duration::from_millis(1600);
/// After this many consecutive losses of one chunk it is delivered anyway, so even `loss: 1.0`
/// delays each chunk by a bounded time instead of stalling the stream forever.
pub const MAX_RETRANSMITS: u32 = 5;

/// Copies `from` to `to` under `faults` until `from` ends (then passes the FIN on, once every
/// queued chunk is delivered) or either side fails. One loop does both halves: a chunk that is
/// due at once, with nothing queued before it, is written straight through (a healthy link
/// costs one read and one write), others wait in order for their delivery time.
///
/// While the direction is cut, nothing is read or delivered: the stream stalls and resumes
/// intact at the heal, as a TCP connection across an iptables DROP does (TCP retransmits what
/// was dropped), so a partition never tears a message in the middle of an open connection.
pub(super) async fn run(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: &Faults,
    healed: &Notify,
) -> io::Result<()> {
    let mut schedule = Schedule::new(StdRng::from_entropy());
    let mut buffer = vec![0u8; 16 * 1024];
    let mut queued: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut ended = false;
    loop {
        if faults.blackholed() {
            // Register before looking again, so a heal in between is not missed.
            let heal = healed.notified();
            tokio::pin!(heal);
            heal.as_mut().enable();
            if faults.blackholed() {
                heal.await;
            }
            continue;
        }
        // Checked after the stall, so not even the FIN crosses a cut link.
        if ended && queued.is_empty() {
            return to.shutdown().await;
        }
        let due = queued.front().map(|(at, _)| *at);
        tokio::select! {
            read = from.read(&mut buffer), if !ended && queued.len() < QUEUE => {
                let n = read?;
                if n == 0 {
                    ended = true;
                    continue;
                }
                let at = schedule.delivery(faults.quality(), Instant::now());
                if queued.is_empty() && at <= Instant::now() && !faults.blackholed() {
                    to.write_all(&buffer[..n]).await?;
                } else {
                    queued.push_back((at, buffer[..n].to_vec()));
                }
            }
            _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if !faults.blackholed() {
                    let (_, bytes) = queued.pop_front().expect("a chunk is due");
                    to.write_all(&bytes).await?;
                }
            }
        }
    }
}

/// When each chunk of one direction is delivered.
pub struct Schedule<R> {
    rng: R,
    last: Option<Instant>,
}

impl<R: Rng> Schedule<R> {
    pub fn new(rng: R) -> Schedule<R> {
        Schedule { rng, last: None }
    }

    /// The delivery time of a chunk read at `now`: now + latency ± jitter, plus a retransmission
    /// timeout per consecutive loss, but never before the previous chunk (no reordering).
    pub fn delivery(&mut self, quality: LinkQuality, now: Instant) -> Instant {
        let mut delay = quality.latency.as_secs_f64();
        let jitter = quality.jitter.as_secs_f64();
        if jitter > 0.0 {
            delay = (delay + self.rng.gen_range(-jitter..=jitter)).max(0.0);
        }
        let mut delay = Duration::from_secs_f64(delay);
        let mut rto = RTO_MIN;
        for _ in 0..MAX_RETRANSMITS {
            // Not gen_bool: it panics outside 0..=1, and a chunk must never panic the proxy.
            if quality.loss <= 0.0 || self.rng.gen::<f64>() >= quality.loss {
                break;
            }
            delay += rto;
            rto = (rto * 2).min(RTO_MAX);
        }
        let at = self.last.map_or(now + delay, |last| last.max(now + delay));
        self.last = Some(at);
        at
    }
}
