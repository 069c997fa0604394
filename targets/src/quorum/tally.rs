//! Quorum counting: when a round of replica answers has met its quorum, and when it no longer can.

/// Answers to one round of requests sent to `total` replicas, of which `needed` must succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    needed: usize,
    total: usize,
    acks: usize,
    failures: usize,
}

impl Tally {
    pub fn new(needed: usize, total: usize) -> Tally {
        Tally {
            needed,
            total,
            acks: 0,
            failures: 0,
        }
    }

    pub fn ack(&mut self) {
        self.acks += 1;
    }

    /// A replica answered with an error or could not be reached (the request may still have been
    /// processed there: a failure is "no promise", not "no effect").
    pub fn failure(&mut self) {
        self.failures += 1;
    }

    /// Enough replicas acknowledged.
    pub fn reached(&self) -> bool {
        self.acks >= self.needed
    }

    /// Too many replicas failed for the rest to make up the quorum.
    pub fn impossible(&self) -> bool {
        self.total.saturating_sub(self.failures) < self.needed
    }

    /// Every replica has answered one way or the other.
    pub fn all_in(&self) -> bool {
        self.acks + self.failures >= self.total
    }
}

/// The default R and W: a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Whether every read quorum meets every write quorum, the condition for linearizable get/put.
pub fn quorums_intersect(n: usize, r: usize, w: usize) -> bool {
    r + w > n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_is_reached_at_exactly_needed_acks() {
        let mut t = Tally::new(2, 3);
        assert!(!t.reached() && !t.impossible() && !t.all_in());
        t.ack();
        assert!(!t.reached());
        t.failure();
        assert!(!t.reached() && !t.impossible());
        t.ack();
        assert!(t.reached() && t.all_in());
        assert_eq!((t.acks, t.needed), (2, 2));
    }

    #[test]
    fn a_quorum_becomes_impossible_when_too_many_fail() {
        let mut t = Tally::new(2, 3);
        t.failure();
        assert!(!t.impossible());
        t.failure();
        assert!(t.impossible() && !t.reached());
        let mut all = Tally::new(3, 3);
        all.ack();
        all.ack();
        all.failure();
        assert!(all.impossible() && all.all_in());
    }

    #[test]
    fn nothing_needed_is_reached_at_once() {
        let t = Tally::new(0, 2);
        assert!(t.reached() && !t.impossible());
    }

    #[test]
    fn majorities_intersect_and_sloppy_quorums_do_not() {
        for n in 1..=7 {
            let m = majority(n);
            assert!(2 * m > n && m <= n, "n={n}");
            assert!(quorums_intersect(n, m, m));
            assert!(quorums_intersect(n, 1, n) && quorums_intersect(n, n, 1));
        }
        assert_eq!(
            (majority(1), majority(3), majority(4), majority(5)),
            (1, 2, 3, 3)
        );
        // What sloppy-quorum effectively runs with.
        assert!(!quorums_intersect(3, 1, 1));
        assert!(!quorums_intersect(5, 2, 3));
    }
}
