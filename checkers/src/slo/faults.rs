//! Fault windows from the nemesis's entries. Each start and stop is recorded twice in a row
//! (planned, then done): a window opens at the first start and closes at the last stop.

use crate::History;
use std::collections::BTreeMap;

/// The fault kind a nemesis `f` starts or stops, and whether it starts it. `heal` is not here:
/// it stops every kind.
pub fn fault_event(f: &str) -> Option<(&'static str, bool)> {
    Some(match f {
        "start-partition" => ("partition", true),
        "stop-partition" => ("partition", false),
        "kill" => ("kill", true),
        "start" => ("kill", false),
        "pause" => ("pause", true),
        "resume" => ("pause", false),
        "bump-clock" | "strobe-clock" => ("clock", true),
        "reset-clock" => ("clock", false),
        "start-latency" => ("latency", true),
        "stop-latency" => ("latency", false),
        "start-loss" => ("loss", true),
        "stop-loss" => ("loss", false),
        "start-suspend" => ("suspend", true),
        "stop-suspend" => ("suspend", false),
        _ => return None,
    })
}

/// A fault in force from `start_ns` to `end_ns` (`None`: never healed).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FaultWindow {
    pub kind: &'static str,
    /// 1 for the first window of its kind, 2 for the next...
    pub n: usize,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
}

impl FaultWindow {
    /// `partition #1`.
    pub fn label(&self) -> String {
        format!("{} #{}", self.kind, self.n)
    }
}

/// The fault windows in order of start. Nemesis entries without a time are skipped.
pub(super) fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut open: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Windows the previous entry closed: the second of a stop pair moves their end.
    let mut just_closed: Vec<usize> = Vec::new();
    let mut last_f: Option<&str> = None;
    for event in history.nemesis_events() {
        let Some(time) = event.time else { continue };
        let f = event.f.as_str();
        let repeat = last_f == Some(f);
        last_f = Some(f);
        let stopped: Vec<&'static str> = match fault_event(f) {
            _ if f == "heal" => open.keys().copied().collect(),
            Some((kind, false)) => vec![kind],
            Some((kind, true)) => {
                if !open.contains_key(kind) {
                    let n = windows.iter().filter(|w| w.kind == kind).count() + 1;
                    open.insert(kind, windows.len());
                    let (start_ns, end_ns) = (time, None);
                    windows.push(FaultWindow {
                        kind,
                        n,
                        start_ns,
                        end_ns,
                    });
                }
                continue;
            }
            None => continue,
        };
        if !repeat {
            just_closed.clear();
        }
        for &i in &just_closed {
            windows[i].end_ns = Some(time);
        }
        for kind in stopped {
            if let Some(i) = open.remove(kind) {
                windows[i].end_ns = Some(time);
                just_closed.push(i);
            }
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, EventType, Process};
    use serde_json::Value;

    fn nemesis(f: &str, s: u64) -> Event {
        let mut e = Event::client(0, EventType::Info, f, Value::Null);
        e.process = Process::Nemesis;
        e.time = Some(s * 1_000_000_000);
        e
    }

    fn windows(entries: &[(&str, u64)]) -> Vec<(String, u64, Option<u64>)> {
        let events = entries.iter().map(|(f, s)| nemesis(f, *s)).collect();
        let found = fault_windows(&History::from_events(events));
        let secs = |ns: u64| ns / 1_000_000_000;
        (found.iter())
            .map(|w| (w.label(), secs(w.start_ns), w.end_ns.map(secs)))
            .collect()
    }

    #[test]
    fn pairs_open_at_first_start_and_close_at_last_stop() {
        let found = windows(&[
            ("start-partition", 1),
            ("start-partition", 2),
            ("kill", 3),
            ("kill", 3),
            ("stop-partition", 4),
            ("stop-partition", 5),
            ("start-partition", 6),
            ("start-partition", 6),
            ("heal", 8),
            ("heal", 9),
            ("pause", 10),
        ]);
        let expected = vec![
            ("partition #1".to_string(), 1, Some(5)),
            ("kill #1".to_string(), 3, Some(9)),
            ("partition #2".to_string(), 6, Some(9)),
            ("pause #1".to_string(), 10, None),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn a_stray_stop_moves_nothing() {
        let found = windows(&[
            ("start-loss", 1),
            ("stop-loss", 2),
            ("stop-loss", 3),
            ("pause", 4),
            ("stop-loss", 7),
        ]);
        assert_eq!(found[0], ("loss #1".to_string(), 1, Some(3)));
        assert_eq!(found[1], ("pause #1".to_string(), 4, None));
    }
}
