//! Collecting anomalies as they are found: every instance is counted, but only the first
//! `max_reported` of each kind are explained, so a history with a million bad reads costs a
//! million increments, not a million sentences.

use std::collections::BTreeMap;

use super::result::{Anomaly, AnomalyKind};

pub(crate) struct Collector {
    max: usize,
    pub(crate) anomalies: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    pub(crate) counts: BTreeMap<AnomalyKind, usize>,
}

impl Collector {
    pub(crate) fn new(max_reported: usize) -> Collector {
        Collector {
            max: max_reported,
            anomalies: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    /// Counts one instance of `kind`, and builds its explanation while fewer than
    /// `max_reported` are kept.
    pub(crate) fn add(&mut self, kind: AnomalyKind, make: impl FnOnce() -> Anomaly) {
        *self.counts.entry(kind).or_default() += 1;
        let kept = self.anomalies.entry(kind).or_default();
        if kept.len() < self.max {
            kept.push(make());
        }
    }

    pub(crate) fn found(&self, kind: AnomalyKind) -> bool {
        self.counts.contains_key(&kind)
    }

    pub(crate) fn kinds(&self) -> Vec<AnomalyKind> {
        self.counts.keys().copied().collect()
    }
}

/// A finding without a cycle: the transactions, the key, and the sentence.
pub(crate) fn plain(
    kind: AnomalyKind,
    txns: Vec<usize>,
    key: Option<i64>,
    text: String,
) -> Anomaly {
    Anomaly {
        kind,
        txns,
        cycle: Vec::new(),
        key,
        explanation: text,
    }
}

impl AnomalyKind {
    /// Elle's name for the anomaly (`G-single-item-realtime`, `lost-update`, ...).
    pub fn name(self) -> &'static str {
        use AnomalyKind::*;
        match self {
            G0 => "G0",
            G0Process => "G0-process",
            G0Realtime => "G0-realtime",
            G1c => "G1c",
            G1cProcess => "G1c-process",
            G1cRealtime => "G1c-realtime",
            GSingle => "G-single-item",
            GSingleProcess => "G-single-item-process",
            GSingleRealtime => "G-single-item-realtime",
            GNonadjacent => "G-nonadjacent-item",
            GNonadjacentProcess => "G-nonadjacent-item-process",
            GNonadjacentRealtime => "G-nonadjacent-item-realtime",
            G2Item => "G2-item",
            G2ItemProcess => "G2-item-process",
            G2ItemRealtime => "G2-item-realtime",
            G1a => "G1a",
            G1b => "G1b",
            Internal => "internal",
            DirtyUpdate => "dirty-update",
            DuplicateElements => "duplicate-elements",
            IncompatibleOrder => "incompatible-order",
            FutureRead => "future-read",
            LostUpdate => "lost-update",
            CyclicVersions => "cyclic-versions",
            EmptyTransactionGraph => "empty-transaction-graph",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [AnomalyKind; 25] = {
        use AnomalyKind::*;
        [
            G0,
            G0Process,
            G0Realtime,
            G1c,
            G1cProcess,
            G1cRealtime,
            GSingle,
            GSingleProcess,
            GSingleRealtime,
            GNonadjacent,
            GNonadjacentProcess,
            GNonadjacentRealtime,
            G2Item,
            G2ItemProcess,
            G2ItemRealtime,
            G1a,
            G1b,
            Internal,
            DirtyUpdate,
            DuplicateElements,
            IncompatibleOrder,
            FutureRead,
            LostUpdate,
            CyclicVersions,
            EmptyTransactionGraph,
        ]
    };
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AnomalyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("no anomaly named {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_round_trip() {
        for kind in AnomalyKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.name()));
            assert_eq!(kind.name().parse::<AnomalyKind>(), Ok(kind));
        }
    }

    #[test]
    fn only_the_first_few_are_explained_but_all_are_counted() {
        let mut c = Collector::new(2);
        let mut built = 0;
        for i in 0..5 {
            c.add(AnomalyKind::G1a, || {
                built += 1;
                plain(AnomalyKind::G1a, vec![i], None, String::new())
            });
        }
        assert_eq!(built, 2);
        assert_eq!(c.counts[&AnomalyKind::G1a], 5);
        assert_eq!(c.anomalies[&AnomalyKind::G1a].len(), 2);
    }
}
