//! The Raft log in memory, and the pure rules over it: the consistency check, conflict
//! truncation, the up-to-date check for votes, and the majority index.

use super::types::Entry;

/// Entries by index; index 0 is a sentinel of term 0 that every log matches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RaftLog {
    entries: Vec<Entry>,
}

/// What [`RaftLog::merge`] did to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Every entry was already there.
    Unchanged,
    /// New entries were added at the end, starting at this index.
    Appended { from: u64 },
    /// A conflicting suffix starting at this index was cut, then the new entries added.
    Truncated { at: u64 },
}

impl RaftLog {
    pub fn new(entries: Vec<Entry>) -> RaftLog {
        RaftLog { entries }
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// The term of the entry at `index` (0 for the sentinel), `None` past the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        match index {
            0 => Some(0),
            i => self.entry(i).map(|e| e.term),
        }
    }

    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.entries.get(i)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries `from..=to` (clamped to the log), `from` ≥ 1.
    pub fn slice(&self, from: u64, to: u64) -> Vec<Entry> {
        let start = (from.max(1) - 1) as usize;
        let end = (to.min(self.last_index())) as usize;
        if start >= end {
            return Vec::new();
        }
        self.entries[start..end].to_vec()
    }

    /// Appends one entry and returns its index.
    pub fn push(&mut self, entry: Entry) -> u64 {
        self.entries.push(entry);
        self.last_index()
    }

    /// The AppendEntries consistency check: does this log hold an entry at `prev_index` of
    /// `prev_term`? (By the Log Matching property, everything before it then matches too.)
    pub fn matches(&self, prev_index: u64, prev_term: u64) -> bool {
        self.term_at(prev_index) == Some(prev_term)
    }

    /// The vote rule (§5.4.1): is a candidate whose log ends at (`last_term`, `last_index`) at
    /// least as up-to-date as this log? Later last term wins; equal terms compare length.
    pub fn candidate_is_up_to_date(&self, last_term: u64, last_index: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Adds the leader's `entries`, which follow `prev_index` (the consistency check must have
    /// passed). An entry already present with the same term is kept; the first one present with a
    /// different term is a conflict: it and everything after it is cut. Entries that match are
    /// never cut, so a late, reordered AppendEntries cannot remove what a newer one added.
    pub fn merge(&mut self, prev_index: u64, entries: Vec<Entry>) -> Merge {
        debug_assert!(prev_index <= self.last_index());
        let mut outcome = Merge::Unchanged;
        for (offset, entry) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + offset as u64;
            match self.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    self.entries.truncate(index as usize - 1);
                    outcome = Merge::Truncated { at: index };
                }
                None => {
                    if outcome == Merge::Unchanged {
                        outcome = Merge::Appended { from: index };
                    }
                }
            }
            self.entries.push(entry);
        }
        outcome
    }

    /// After a failed consistency check at `prev_index`: the index the leader should send from
    /// next. A short log asks for the entry after its end; a conflicting one skips back over the
    /// whole conflicting term at once.
    pub fn hint_next(&self, prev_index: u64) -> u64 {
        let Some(conflict_term) = self.term_at(prev_index) else {
            return self.last_index() + 1;
        };
        let mut first = prev_index;
        while first > 1 && self.term_at(first - 1) == Some(conflict_term) {
            first -= 1;
        }
        first.max(1)
    }
}

/// The highest value that at least `majority` of the members have reached: `own` (this node) and
/// `peers`. Used for the commit index (match indexes) and for confirmed heartbeat rounds.
pub fn majority_value(own: u64, peers: &[u64], majority: usize) -> u64 {
    let mut all: Vec<u64> = peers.to_vec();
    all.push(own);
    all.sort_unstable_by(|a, b| b.cmp(a));
    all[majority.clamp(1, all.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Command;

    fn log(terms: &[u64]) -> RaftLog {
        RaftLog::new(terms.iter().map(|&t| entry(t)).collect())
    }

    fn entry(term: u64) -> Entry {
        Entry {
            term,
            command: Command::Noop,
        }
    }

    fn terms(log: &RaftLog) -> Vec<u64> {
        log.entries().iter().map(|e| e.term).collect()
    }

    #[test]
    fn consistency_check() {
        let l = log(&[1, 1, 2]);
        assert!(l.matches(0, 0));
        assert!(l.matches(2, 1));
        assert!(l.matches(3, 2));
        assert!(!l.matches(3, 1));
        assert!(!l.matches(4, 2));
    }

    #[test]
    fn merge_appends_keeps_matches_and_truncates_conflicts() {
        let mut l = log(&[1, 1, 2]);
        assert_eq!(
            l.merge(3, vec![entry(2), entry(3)]),
            Merge::Appended { from: 4 }
        );
        assert_eq!(terms(&l), [1, 1, 2, 2, 3]);
        // A stale, shorter message that matches changes nothing (and cuts nothing).
        assert_eq!(l.merge(1, vec![entry(1), entry(2)]), Merge::Unchanged);
        assert_eq!(terms(&l), [1, 1, 2, 2, 3]);
        // A conflict at index 3 cuts 3.. and takes the leader's entries.
        assert_eq!(l.merge(2, vec![entry(4)]), Merge::Truncated { at: 3 });
        assert_eq!(terms(&l), [1, 1, 4]);
        assert_eq!(l.merge(3, vec![]), Merge::Unchanged);
    }

    #[test]
    fn up_to_date_check() {
        let l = log(&[1, 2, 2]);
        assert!(l.candidate_is_up_to_date(2, 3));
        assert!(l.candidate_is_up_to_date(2, 4));
        assert!(
            l.candidate_is_up_to_date(3, 1),
            "a later last term wins over length"
        );
        assert!(!l.candidate_is_up_to_date(2, 2));
        assert!(
            !l.candidate_is_up_to_date(1, 9),
            "an older last term loses over length"
        );
        assert!(RaftLog::default().candidate_is_up_to_date(0, 0));
    }

    #[test]
    fn hints_skip_a_conflicting_term() {
        let l = log(&[1, 2, 2, 2]);
        assert_eq!(l.hint_next(6), 5, "short log: send from its end");
        assert_eq!(
            l.hint_next(4),
            2,
            "conflict in term 2: skip back to its first entry"
        );
        assert_eq!(l.hint_next(1), 1);
    }

    #[test]
    fn majority_values() {
        assert_eq!(majority_value(5, &[3, 1], 2), 3);
        assert_eq!(majority_value(5, &[], 1), 5);
        assert_eq!(majority_value(2, &[9, 9, 1, 0], 3), 2);
    }
}
