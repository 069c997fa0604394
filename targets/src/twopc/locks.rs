//! A participant's account locks: shared (reads) and exclusive (transfers), granted first come,
//! first served.
//!
//! A request names all the accounts it needs and is granted all at once or not at all, so one
//! participant never holds half of a request. A request is granted only when no holder conflicts
//! with it *and* no earlier waiting request conflicts with it, so a read that waits for busy
//! accounts is not starved by a stream of later transfers (and the other way round). Waiting is
//! the caller's business and always bounded (see `participant`): a request that is not granted
//! in time is cancelled, which breaks any cycle across participants. Pure data, no I/O.

use super::messages::TxnId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Holder {
    Exclusive(TxnId),
    Shared(BTreeSet<TxnId>),
}

#[derive(Clone, Debug)]
struct Request {
    txn: TxnId,
    accounts: Vec<String>,
    mode: Mode,
}

/// A waiting request's place in line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Debug, Default)]
pub struct LockTable {
    holders: HashMap<String, Holder>,
    waiting: BTreeMap<Ticket, Request>,
    next_ticket: u64,
}

fn conflicts(a: &Request, b: &Request) -> bool {
    a.txn != b.txn
        && (a.mode == Mode::Exclusive || b.mode == Mode::Exclusive)
        && a.accounts.iter().any(|x| b.accounts.contains(x))
}

impl LockTable {
    pub fn new() -> LockTable {
        LockTable::default()
    }

    /// Queues a request for `accounts` in `mode`; [`LockTable::try_grant`] it until it is granted
    /// or [`LockTable::cancel`] it.
    pub fn request(&mut self, txn: TxnId, accounts: &[String], mode: Mode) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        self.waiting.insert(
            ticket,
            Request {
                txn,
                accounts,
                mode,
            },
        );
        ticket
    }

    /// Grants a queued request if it can be granted now (true), leaving it queued otherwise.
    /// True also for a ticket no longer queued (already granted).
    pub fn try_grant(&mut self, ticket: Ticket) -> bool {
        let Some(request) = self.waiting.get(&ticket) else {
            return true;
        };
        let blocked_by_earlier = self
            .waiting
            .range(..ticket)
            .any(|(_, earlier)| conflicts(earlier, request));
        if blocked_by_earlier || !self.compatible(request) {
            return false;
        }
        let request = self.waiting.remove(&ticket).expect("present above");
        self.hold(request.txn, &request.accounts, request.mode);
        true
    }

    /// Withdraws a waiting request (after its wait ran out).
    pub fn cancel(&mut self, ticket: Ticket) {
        self.waiting.remove(&ticket);
    }

    /// Takes locks at once regardless of the queue (recovery of prepared transactions, before
    /// anything else runs). Returns false, taking nothing, if a holder conflicts.
    pub fn acquire_now(&mut self, txn: TxnId, accounts: &[String], mode: Mode) -> bool {
        let request = Request {
            txn,
            accounts: accounts.to_vec(),
            mode,
        };
        if !self.compatible(&request) {
            return false;
        }
        self.hold(txn, accounts, mode);
        true
    }

    /// Drops every lock `txn` holds; true if it held any.
    pub fn release(&mut self, txn: TxnId) -> bool {
        let mut released = false;
        self.holders.retain(|_, holder| match holder {
            Holder::Exclusive(t) if *t == txn => {
                released = true;
                false
            }
            Holder::Exclusive(_) => true,
            Holder::Shared(set) => {
                released |= set.remove(&txn);
                !set.is_empty()
            }
        });
        released
    }

    /// Whether `txn` holds a lock on `account`.
    pub fn holds(&self, txn: TxnId, account: &str) -> bool {
        match self.holders.get(account) {
            Some(Holder::Exclusive(t)) => *t == txn,
            Some(Holder::Shared(set)) => set.contains(&txn),
            None => false,
        }
    }

    /// How many requests are waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn compatible(&self, request: &Request) -> bool {
        request
            .accounts
            .iter()
            .all(|account| match self.holders.get(account) {
                None => true,
                Some(Holder::Exclusive(t)) => *t == request.txn,
                Some(Holder::Shared(set)) => match request.mode {
                    Mode::Shared => true,
                    Mode::Exclusive => set.iter().all(|t| *t == request.txn),
                },
            })
    }

    fn hold(&mut self, txn: TxnId, accounts: &[String], mode: Mode) {
        for account in accounts {
            match mode {
                Mode::Exclusive => {
                    self.holders.insert(account.clone(), Holder::Exclusive(txn));
                }
                Mode::Shared => match self.holders.get_mut(account) {
                    Some(Holder::Shared(set)) => {
                        set.insert(txn);
                    }
                    // Already exclusive for this same txn: that covers a shared lock.
                    Some(Holder::Exclusive(_)) => {}
                    None => {
                        self.holders
                            .insert(account.clone(), Holder::Shared(BTreeSet::from([txn])));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: u64) -> TxnId {
        TxnId { epoch: 1, seq }
    }

    fn accts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exclusive_excludes_and_release_frees() {
        let mut locks = LockTable::new();
        let a = locks.request(t(1), &accts(&["a1", "a2"]), Mode::Exclusive);
        assert!(locks.try_grant(a));
        let b = locks.request(t(2), &accts(&["a2"]), Mode::Exclusive);
        assert!(!locks.try_grant(b));
        let c = locks.request(t(3), &accts(&["a3"]), Mode::Exclusive);
        assert!(locks.try_grant(c), "disjoint accounts do not wait");
        assert!(locks.release(t(1)));
        assert!(!locks.release(t(1)));
        assert!(locks.try_grant(b));
        assert!(locks.holds(t(2), "a2"));
        assert!(!locks.holds(t(1), "a1"));
        assert_eq!(locks.waiting(), 0);
    }

    #[test]
    fn shared_locks_coexist_but_block_writers() {
        let mut locks = LockTable::new();
        let r1 = locks.request(t(1), &accts(&["a1", "a2"]), Mode::Shared);
        let r2 = locks.request(t(2), &accts(&["a1", "a2"]), Mode::Shared);
        assert!(locks.try_grant(r1));
        assert!(locks.try_grant(r2));
        let w = locks.request(t(3), &accts(&["a1"]), Mode::Exclusive);
        assert!(!locks.try_grant(w));
        locks.release(t(1));
        assert!(!locks.try_grant(w), "one reader still holds a1");
        locks.release(t(2));
        assert!(locks.try_grant(w));
    }

    #[test]
    fn an_earlier_waiter_is_not_overtaken() {
        let mut locks = LockTable::new();
        let w1 = locks.request(t(1), &accts(&["a1"]), Mode::Exclusive);
        assert!(locks.try_grant(w1));
        // A read of everything waits for w1 ...
        let read = locks.request(t(2), &accts(&["a1", "a2"]), Mode::Shared);
        assert!(!locks.try_grant(read));
        // ... and a later writer on a2, free right now, must not starve it.
        let w2 = locks.request(t(3), &accts(&["a2"]), Mode::Exclusive);
        assert!(!locks.try_grant(w2));
        locks.release(t(1));
        assert!(locks.try_grant(read));
        assert!(!locks.try_grant(w2));
        locks.release(t(2));
        assert!(locks.try_grant(w2));
    }

    #[test]
    fn cancelling_a_waiter_unblocks_those_behind_it() {
        let mut locks = LockTable::new();
        let w1 = locks.request(t(1), &accts(&["a1"]), Mode::Exclusive);
        assert!(locks.try_grant(w1));
        let w2 = locks.request(t(2), &accts(&["a1", "a2"]), Mode::Exclusive);
        let w3 = locks.request(t(3), &accts(&["a2"]), Mode::Exclusive);
        assert!(!locks.try_grant(w2));
        assert!(!locks.try_grant(w3));
        locks.cancel(w2);
        assert!(locks.try_grant(w3));
    }

    #[test]
    fn recovery_takes_locks_directly() {
        let mut locks = LockTable::new();
        assert!(locks.acquire_now(t(1), &accts(&["a1"]), Mode::Exclusive));
        assert!(!locks.acquire_now(t(2), &accts(&["a1"]), Mode::Exclusive));
        assert!(locks.acquire_now(t(1), &accts(&["a1"]), Mode::Exclusive));
        let r = locks.request(t(3), &accts(&["a1"]), Mode::Shared);
        assert!(!locks.try_grant(r));
    }
}
