//! One direction of one proxied connection: a reader that stamps each chunk with its delivery
//! time, and a writer that delivers chunks in order at those times.

use super::Faults;
use crate::control::LinkQuality;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// Chunks queued between reader and writer; beyond this the reader waits, so a slow link pushes
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
/// queued chunk is delivered) or either side fails.
pub(super) async fn run(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: &Faults,
) -> io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        let mut schedule = Schedule::new(StdRng::from_entropy());
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buffer).await?;
            if n == 0 {
                return Ok(()); // dropping `queue` lets the writer finish
            }
            if faults.blackholed() {
                continue;
            }
            let at = schedule.delivery(faults.quality(), Instant::now());
            if queue.send((at, buffer[..n].to_vec())).await.is_err() {
                return Ok(()); // the writer failed; its error ends the connection
            }
        }
    };
    let write = async move {
        while let Some((at, bytes)) = queued.recv().await {
            // A timer costs a tick (about a millisecond) even when already due: skip it then,
            // so a healthy link adds microseconds, not milliseconds.
            if at > Instant::now() {
                sleep_until(at).await;
            }
            // Bytes in flight when the link is cut are lost too.
            if faults.blackholed() {
                continue;
            }
            to.write_all(&bytes).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
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
