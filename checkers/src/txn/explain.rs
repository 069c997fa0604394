//! Words for edges and cycles: each step of a cycle says why it holds, and the anomaly retells
//! the whole cycle in a sentence or two (Elle's "explain, don't just judge").

use super::history::{Elem, Key, TxnHistory};
use super::result::{AnomalyKind, CycleStep, EdgeKind};

/// Why a data edge (ww, wr, rw) holds, as the workload that inferred it knows.
pub(crate) trait ExplainData {
    /// The key, the value the edge is about, and a sentence ending in ": ww" (or wr, rw).
    fn data_edge(&self, from: u32, to: u32, kind: EdgeKind) -> Option<(Key, Option<Elem>, String)>;
}

/// `T12`: transactions are named by their position in the history.
pub(crate) fn t(id: impl Into<u64>) -> String {
    format!("T{}", id.into())
}

/// A list as Elle prints it, shortened in the middle when long: `[1 2 3 … 40 41] (41 elements)`.
pub(crate) fn list(items: &[Elem]) -> String {
    const EDGE: usize = 4;
    if items.len() <= 2 * EDGE + 2 {
        let inner: Vec<String> = items.iter().map(|e| e.to_string()).collect();
        return format!("[{}]", inner.join(" "));
    }
    let head: Vec<String> = items[..EDGE].iter().map(|e| e.to_string()).collect();
    let tail: Vec<String> = items[items.len() - EDGE..]
        .iter()
        .map(|e| e.to_string())
        .collect();
    format!(
        "[{} … {}] ({} elements)",
        head.join(" "),
        tail.join(" "),
        items.len()
    )
}

/// A register value: `nil` for the initial state.
pub(crate) fn reg(value: Option<Elem>) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// One step of a cycle in words, choosing among the edge's kinds the one the search used.
pub(crate) fn step(
    history: &TxnHistory,
    data: &dyn ExplainData,
    from: u32,
    to: u32,
    kind: EdgeKind,
) -> CycleStep {
    let (key, value, why) = match kind {
        EdgeKind::Realtime => (
            None,
            None,
            format!("{} completed before {} began: realtime", t(from), t(to)),
        ),
        EdgeKind::Process => (
            None,
            None,
            format!(
                "{} and {} ran on process {}, {} first: process",
                t(from),
                t(to),
                history.txns[from as usize].process,
                t(from)
            ),
        ),
        _ => match data.data_edge(from, to, kind) {
            Some((k, v, why)) => (Some(k), v, why),
            None => (
                None,
                None,
                format!("{} precedes {}: {}", t(from), t(to), kind_name(kind)),
            ),
        },
    };
    CycleStep {
        from: from as usize,
        to: to as usize,
        kind,
        key,
        value,
        why,
    }
}

pub(crate) fn kind_name(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Ww => "ww",
        EdgeKind::Wr => "wr",
        EdgeKind::Rw => "rw",
        EdgeKind::Realtime => "realtime",
        EdgeKind::Process => "process",
    }
}

/// The sentence for a whole cycle: what kind it is, why that matters, then the steps.
pub(crate) fn cycle_text(kind: AnomalyKind, steps: &[CycleStep]) -> String {
    let names: Vec<String> = steps
        .iter()
        .map(|s| t(s.from as u64))
        .chain(steps.first().map(|s| t(s.from as u64)))
        .collect();
    let meaning = match kind {
        AnomalyKind::G0 | AnomalyKind::G0Process | AnomalyKind::G0Realtime => {
            "writes alone order these transactions in a circle (write cycle)"
        }
        AnomalyKind::G1c | AnomalyKind::G1cProcess | AnomalyKind::G1cRealtime => {
            "each transaction saw or overwrote the next one's writes in a circle (circular information flow)"
        }
        AnomalyKind::GSingle | AnomalyKind::GSingleProcess | AnomalyKind::GSingleRealtime => {
            "exactly one transaction missed a write that, by the other dependencies, happened before it (read skew)"
        }
        AnomalyKind::GNonadjacent
        | AnomalyKind::GNonadjacentProcess
        | AnomalyKind::GNonadjacentRealtime => {
            "several transactions missed writes, never two in a row around the cycle"
        }
        _ => "transactions missed each other's writes (anti-dependency cycle, as in write skew)",
    };
    let mut text = format!("{}: {} — {}.", kind.name(), names.join(" → "), meaning);
    for s in steps {
        text.push(' ');
        text.push_str(&s.why);
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_shortened_in_the_middle() {
        assert_eq!(list(&[]), "[]");
        assert_eq!(list(&[1, 2]), "[1 2]");
        let long: Vec<Elem> = (1..=41).collect();
        assert_eq!(list(&long), "[1 2 3 4 … 38 39 40 41] (41 elements)");
        assert_eq!(reg(None), "nil");
    }
}
