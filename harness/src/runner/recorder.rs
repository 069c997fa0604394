//! Writes the history as it happens: every event is appended to `history.jsonl` through a buffer
//! by a writer thread, which hands the buffer to the kernel at least every 100 ms and fsyncs at
//! least every second and at the end. A controller killed at any moment (SIGKILL, OOM) loses only
//! what was still in its buffer, at most the last 100 ms; a machine that loses power, at most the
//! last second.

use anyhow::Context;
use checkers::{Event, EventType, Process};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long an event may wait in the process's buffer: what a SIGKILL can lose.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long an event may wait in the kernel's page cache: what a power loss can lose.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Hands out event indices and times and queues events for the writer thread. Cheap to share.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Sequencer>>,
    started: Instant,
}

struct Sequencer {
    next_index: u64,
    /// `None` once closed: later events are dropped (and logged), never written half.
    queue: Option<mpsc::Sender<Event>>,
}

/// The writer thread; [`Writer::finish`] waits for every queued event to be on disk.
pub struct Writer {
    thread: Option<thread::JoinHandle<anyhow::Result<u64>>>,
    recorder: Recorder,
}

/// Opens `path` for the history and starts the writer thread. `started` is the test's time zero.
pub fn open(path: &Path, started: Instant) -> anyhow::Result<(Recorder, Writer)> {
    let file = File::create(path)
        .with_context(|| format!("cannot create the history {}", path.display()))?;
    let (queue, events) = mpsc::channel::<Event>();
    let shown = path.display().to_string();
    let thread = thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || write_loop(file, events, &shown))
        .context("cannot start the history writer thread")?;
    let recorder = Recorder {
        inner: Arc::new(Mutex::new(Sequencer {
            next_index: 0,
            queue: Some(queue),
        })),
        started,
    };
    Ok((
        recorder.clone(),
        Writer {
            thread: Some(thread),
            recorder,
        },
    ))
}

fn write_loop(file: File, events: mpsc::Receiver<Event>, shown: &str) -> anyhow::Result<u64> {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let (mut last_flush, mut last_sync) = (Instant::now(), Instant::now());
    let mut written = 0u64;
    // Events still in our buffer, and events the kernel has but the disk may not.
    let (mut unflushed, mut unsynced) = (false, false);
    loop {
        let mut wait = Duration::from_secs(3600);
        if unflushed {
            wait = wait.min(FLUSH_EVERY.saturating_sub(last_flush.elapsed()));
        }
        if unflushed || unsynced {
            wait = wait.min(SYNC_EVERY.saturating_sub(last_sync.elapsed()));
        }
        match events.recv_timeout(wait) {
            Ok(event) => {
                serde_json::to_writer(&mut out, &event)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
                    .with_context(|| format!("cannot append to {shown}"))?;
                written += 1;
                unflushed = true;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if unflushed && last_flush.elapsed() >= FLUSH_EVERY {
            out.flush()
                .with_context(|| format!("cannot append to {shown}"))?;
            (unflushed, unsynced) = (false, true);
            last_flush = Instant::now();
        }
        if (unflushed || unsynced) && last_sync.elapsed() >= SYNC_EVERY {
            sync(&mut out).with_context(|| format!("cannot sync {shown}"))?;
            (unflushed, unsynced) = (false, false);
            (last_flush, last_sync) = (Instant::now(), Instant::now());
        }
    }
    sync(&mut out).with_context(|| format!("cannot sync {shown}"))?;
    Ok(written)
}

fn sync(out: &mut BufWriter<File>) -> std::io::Result<()> {
    out.flush()?;
    out.get_ref().sync_data()
}

/// One event's fields, before the recorder numbers and times it.
pub struct Entry {
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<Value>,
    pub value: Value,
    pub node: Option<String>,
    pub error: Option<String>,
}

impl Recorder {
    /// Nanoseconds since the test started.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Time zero of the test.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Appends an event now; returns its index. Events are written in the order of their
    /// indices, and an event's time never goes back.
    pub fn record(&self, entry: Entry) -> u64 {
        let mut seq = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = seq.next_index;
        seq.next_index += 1;
        let event = Event {
            index,
            time: Some(self.now_ns()),
            process: entry.process,
            kind: entry.kind,
            f: entry.f,
            key: entry.key,
            value: entry.value,
            node: entry.node,
            error: entry.error.map(Value::String),
        };
        match &seq.queue {
            Some(queue) if queue.send(event).is_ok() => {}
            _ => tracing::warn!(index, "history already closed; event dropped"),
        }
        index
    }
}

impl Writer {
    /// Closes the history and waits until every event is written and synced; returns how many.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.close()
    }

    fn close(&mut self) -> anyhow::Result<u64> {
        self.recorder
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue = None;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the history writer thread panicked"))?,
            None => Ok(0),
        }
    }
}

impl Drop for Writer {
    /// Even on an error path, what was recorded reaches the disk.
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(process: u64, kind: EventType) -> Entry {
        Entry {
            process: Process::Client(process),
            kind,
            f: "read".into(),
            key: Some(Value::from(3)),
            value: Value::Null,
            node: Some("n1".into()),
            error: None,
        }
    }

    #[test]
    fn events_are_numbered_timed_and_all_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (recorder, writer) = open(&path, Instant::now()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let recorder = recorder.clone();
                thread::spawn(move || {
                    for _ in 0..250 {
                        recorder.record(entry(p, EventType::Invoke));
                        recorder.record(entry(p, EventType::Ok));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(writer.finish().unwrap(), 2_000);
        let text = std::fs::read_to_string(&path).unwrap();
        let history = checkers::history::read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(history.events.len(), 2_000);
        let indices: Vec<u64> = history.events.iter().map(|e| e.index).collect();
        assert_eq!(indices, (0..2_000).collect::<Vec<_>>());
        assert_eq!(history.operations().unwrap().len(), 1_000);
        let times: Vec<u64> = history.events.iter().map(|e| e.time.unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn events_reach_the_disk_within_about_a_second_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (recorder, writer) = open(&path, Instant::now()).unwrap();
        recorder.record(entry(0, EventType::Invoke));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path)
            .unwrap_or_default()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "nothing synced within 10 s");
            thread::sleep(Duration::from_millis(50));
        }
        drop(writer);
        recorder.record(entry(0, EventType::Ok));
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(
            lines, 1,
            "an event after close is dropped, not written half"
        );
    }
}
