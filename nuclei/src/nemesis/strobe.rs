//! The clock strobe: a task flipping nodes' clock offsets between +d and 0 until told to stop.
//! Stopping waits for the task to finish its flip, so no flip lands after the reset.

use crate::control::{ClusterControl, NodeId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a stop waits for a flip in progress (a control call) before aborting the task.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Failures kept verbatim; the rest are only counted.
const KEPT_ERRORS: usize = 3;

/// What a strobe did, reported when it stops.
#[derive(Debug, Default)]
pub(crate) struct StrobeReport {
    pub flips: u64,
    pub failures: u64,
    pub errors: Vec<String>,
}

impl StrobeReport {
    /// One line for `Applied.error`, if anything failed.
    pub fn error(&self) -> Option<String> {
        (self.failures > 0).then(|| {
            format!(
                "strobe: {} clock change(s) failed: {}",
                self.failures,
                self.errors.join("; ")
            )
        })
    }
}

/// A running strobe. Dropping it aborts the task (the nemesis is going away); [`Self::stop`]
/// ends it cleanly.
pub(crate) struct StrobeTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<StrobeReport>>,
}

impl StrobeTask {
    /// Starts flipping, first to 0: the caller has just set `delta_ms` itself.
    pub fn spawn(
        control: Arc<dyn ClusterControl>,
        nodes: Vec<NodeId>,
        delta_ms: i64,
        period: Duration,
    ) -> StrobeTask {
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(run(control, nodes, delta_ms, period, rx));
        StrobeTask {
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the task and waits for it, at most [`STOP_GRACE`].
    pub async fn stop(mut self) -> StrobeReport {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let Some(mut handle) = self.handle.take() else {
            return StrobeReport::default();
        };
        match tokio::time::timeout(STOP_GRACE, &mut handle).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => StrobeReport {
                failures: 1,
                errors: vec![format!("the strobe task failed: {e}")],
                ..StrobeReport::default()
            },
            Err(_) => {
                handle.abort();
                StrobeReport {
                    failures: 1,
                    errors: vec![format!(
                        "a clock change hung for over {STOP_GRACE:?}; strobe aborted"
                    )],
                    ..StrobeReport::default()
                }
            }
        }
    }
}

impl Drop for StrobeTask {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

async fn run(
    control: Arc<dyn ClusterControl>,
    nodes: Vec<NodeId>,
    delta_ms: i64,
    period: Duration,
    mut stop: oneshot::Receiver<()>,
) -> StrobeReport {
    let mut report = StrobeReport::default();
    let mut high = true;
    loop {
        // A stop (or the sender gone) ends the strobe between flips, never inside one.
        tokio::select! {
            biased;
            _ = &mut stop => return report,
            _ = tokio::time::sleep(period) => {}
        }
        high = !high;
        let offset = if high { delta_ms } else { 0 };
        for node in &nodes {
            if let Err(e) = control.set_clock_offset(node, offset).await {
                report.failures += 1;
                if report.errors.len() < KEPT_ERRORS {
                    report
                        .errors
                        .push(format!("setting {node}'s clock to {offset:+} ms: {e:#}"));
                }
            }
        }
        report.flips += 1;
    }
}
