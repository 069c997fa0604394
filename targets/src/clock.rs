//! The one wall clock of every target: all wall-clock reads go through [`now_ms`].
//!
//! It reads the system's realtime clock, so a libfaketime preload (`FAKETIME`, with
//! `FAKETIME_DONT_FAKE_MONOTONIC=1`) moves it, and then adds the offset in the node's
//! `--clock-offset-file` (signed milliseconds as text), re-read at most every 50 ms, so a
//! controller can skew a node's clock without libfaketime. Timeouts use the monotonic clock
//! (tokio), which neither touches: skew must break only what trusts the wall clock.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct OffsetFile {
    path: PathBuf,
    offset_ms: i64,
    read_at: Option<Instant>,
}

static OFFSET_FILE: OnceLock<Mutex<OffsetFile>> = OnceLock::new();
const REREAD: Duration = Duration::from_millis(50);

/// Makes [`now_ms`] add the offset written in `path`. Call once, at start-up.
pub fn use_offset_file(path: PathBuf) {
    let _ = OFFSET_FILE.set(Mutex::new(OffsetFile {
        path,
        offset_ms: 0,
        read_at: None,
    }));
}

/// Wall-clock milliseconds since the Unix epoch, skewed as the node's clock fault says.
pub fn now_ms() -> i64 {
    let system = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    system + offset_ms()
}

fn offset_ms() -> i64 {
    let Some(file) = OFFSET_FILE.get() else {
        return 0;
    };
    let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
    if file.read_at.is_none_or(|at| at.elapsed() >= REREAD) {
        // A missing or unreadable file means no skew; a half-written one keeps the last value.
        file.offset_ms = match std::fs::read_to_string(&file.path) {
            Ok(text) => text.trim().parse().unwrap_or(file.offset_ms),
            Err(_) => 0,
        };
        file.read_at = Some(Instant::now());
    }
    file.offset_ms
}
