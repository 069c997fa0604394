//! Versions and versioned values: the pure ordering rules every replica and coordinator share.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A value's version. Versions are totally ordered: by `counter`, then by the writing coordinator's
/// `node` id, then by `seq`.
///
/// `(counter, node)` is the classic ABD tag. `seq` is unique per coordinator process for every
/// write it issues (its high 32 bits are the node's incarnation, bumped durably at every start), so
/// two writes never share a version even when one coordinator runs two puts on the same key at
/// once, or a put from before a crash is still in flight when the restarted node writes again.
/// Without it two different values could carry one version, replicas would keep whichever came
/// first, and reads could disagree forever.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub counter: i64,
    pub node: String,
    pub seq: u64,
}

impl Version {
    /// The version a correct put chooses: one more than the highest counter its first phase saw.
    pub fn after(highest: Option<&Version>, node: &str, seq: u64) -> Version {
        Version {
            counter: highest.map_or(0, |v| v.counter).saturating_add(1),
            node: node.to_string(),
            seq,
        }
    }

    /// The version the `lww-wallclock` bug chooses: the coordinator's wall clock, whatever the
    /// replicas already hold.
    pub fn wall_clock(now_ms: i64, node: &str, seq: u64) -> Version {
        Version {
            counter: now_ms,
            node: node.to_string(),
            seq,
        }
    }
}

/// A value with its version, as a replica stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: Version,
    pub value: Value,
}

/// The highest-versioned entry among replica answers (`None` for a replica without the key).
pub fn highest<'a>(answers: impl IntoIterator<Item = Option<&'a Entry>>) -> Option<&'a Entry> {
    answers
        .into_iter()
        .flatten()
        .max_by(|a, b| a.version.cmp(&b.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(counter: i64, node: &str, seq: u64) -> Version {
        Version {
            counter,
            node: node.into(),
            seq,
        }
    }

    #[test]
    fn counter_dominates_then_node_then_seq() {
        assert!(v(2, "n1", 0) > v(1, "n9", 99));
        assert!(v(1, "n2", 0) > v(1, "n1", 99));
        assert!(v(1, "n1", 5) > v(1, "n1", 4));
        assert_eq!(v(3, "n1", 7), v(3, "n1", 7));
    }

    #[test]
    fn a_new_version_beats_everything_seen() {
        assert_eq!(Version::after(None, "n1", 0), v(1, "n1", 0));
        for seen in [v(4, "n3", 9), v(4, "n9", u64::MAX), v(0, "", 0)] {
            for node in ["n1", "n2", "n3"] {
                let next = Version::after(Some(&seen), node, 0);
                assert!(next > seen, "{next:?} after {seen:?}");
            }
        }
    }

    #[test]
    fn a_wall_clock_version_ignores_what_is_stored() {
        // A node whose clock is a minute behind writes "after" a stored version and still loses.
        let stored = Version::wall_clock(1_000_000, "n2", 0);
        let later = Version::wall_clock(1_000_000 + 50 - 60_000, "n1", 0);
        assert!(later < stored);
    }

    #[test]
    fn highest_skips_missing_keys() {
        let a = Entry {
            version: v(1, "n2", 0),
            value: json!("a"),
        };
        let b = Entry {
            version: v(1, "n3", 0),
            value: json!("b"),
        };
        assert_eq!(highest([None, Some(&a), Some(&b), None]), Some(&b));
        assert_eq!(highest([Some(&a)]), Some(&a));
        assert_eq!(highest([None, None]), None);
        assert_eq!(highest(std::iter::empty()), None);
    }
}
