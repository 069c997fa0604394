//! A brute-force oracle for the isolation checker, for tests only: it decides serializability of a
//! small transactional history by searching serial orders, with no inference at all.
//!
//! It exists so the checker's inferences (version orders, dependency edges, cycle search) can be
//! judged against the definition itself: a history is **serializable** when some total order of
//! its committed transactions (every `ok` one, plus any subset of the `info` ones; `fail` ones
//! never take effect), run one at a time against an initially empty store, reproduces every read
//! an `ok` transaction returned; **strict-serializable** when such an order also puts A before B
//! whenever A completed `ok` before B was invoked. The search is exponential: it refuses more than
//! [`MAX_TXNS`] transactions that may take effect. Reads see the transaction's own earlier writes,
//! so an order exists only if every transaction is also internally consistent;
//! [`internal_violations`] names the ones that are not on their own.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::history::{Elem, Key, Mop, ReadValue, Txn, TxnHistory};
use crate::history::Outcome;

/// The most transactions (`ok` plus `info`) the search accepts: beyond it the search may take
/// minutes, and a test meaning to use the oracle should generate smaller histories.
pub const MAX_TXNS: usize = 16;

/// A history too large for the brute-force search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub txns: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} transactions may take effect; the brute-force reference searches at most {MAX_TXNS}",
            self.txns
        )
    }
}

impl std::error::Error for TooLarge {}

/// Which orders count: any (serializable) or those respecting real time (strict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Serial,
    StrictSerial,
}

/// The store as a serial execution sees it: each key's list (list-append) or a one-element list
/// holding the register's value (rw-register; empty when never written).
type Store = BTreeMap<Key, Vec<Elem>>;

/// A serial order of `Txn::id`s that reproduces every `ok` read, when one exists. Info
/// transactions left out of the order are taken never to have happened.
pub fn serial_order(history: &TxnHistory, order: Order) -> Result<Option<Vec<usize>>, TooLarge> {
    let candidates: Vec<&Txn> = history
        .txns
        .iter()
        .filter(|t| t.outcome != Outcome::Fail)
        .collect();
    if candidates.len() > MAX_TXNS {
        return Err(TooLarge {
            txns: candidates.len(),
        });
    }
    let mut search = Search {
        txns: candidates,
        order,
        failed: HashSet::new(),
        path: Vec::new(),
    };
    let found = search.extend(0, &Store::new());
    Ok(found.then(|| search.path.iter().map(|&i| search.txns[i].id).collect()))
}

/// True if some serial order of the committed transactions reproduces every `ok` read.
pub fn is_serializable(history: &TxnHistory) -> Result<bool, TooLarge> {
    Ok(serial_order(history, Order::Serial)?.is_some())
}

/// True if some serial order that also respects real time reproduces every `ok` read.
pub fn is_strict_serializable(history: &TxnHistory) -> Result<bool, TooLarge> {
    Ok(serial_order(history, Order::StrictSerial)?.is_some())
}

struct Search<'a> {
    txns: Vec<&'a Txn>,
    order: Order,
    /// (placed set, store) pairs already known to lead nowhere: different orders of the same
    /// transactions often reach the same store.
    failed: HashSet<(u32, Store)>,
    /// Positions in `txns` of the order found so far.
    path: Vec<usize>,
}

impl Search<'_> {
    fn extend(&mut self, placed: u32, store: &Store) -> bool {
        let done = self
            .txns
            .iter()
            .enumerate()
            .all(|(i, t)| placed & (1 << i) != 0 || t.outcome != Outcome::Ok);
        if done {
            return true;
        }
        if self.failed.contains(&(placed, store.clone())) {
            return false;
        }
        for next in 0..self.txns.len() {
            if placed & (1 << next) != 0 || !self.may_go_next(placed, next) {
                continue;
            }
            if let Some(after) = run(self.txns[next], store) {
                self.path.push(next);
                if self.extend(placed | (1 << next), &after) {
                    return true;
                }
                self.path.pop();
            }
        }
        self.failed.insert((placed, store.clone()));
        false
    }

    /// Real time: a transaction may not take effect before an `ok` one that completed before it
    /// was invoked. An `info` one may take effect any time after its invocation, so it binds
    /// nothing after it.
    fn may_go_next(&self, placed: u32, next: usize) -> bool {
        if self.order == Order::Serial {
            return true;
        }
        let call = self.txns[next].call;
        self.txns.iter().enumerate().all(|(i, t)| {
            placed & (1 << i) != 0
                || i == next
                || t.outcome != Outcome::Ok
                || t.ret.is_none_or(|ret| ret > call)
        })
    }
}

/// Runs one transaction against `store`: the store after it, or `None` if a read it returned
/// differs from what a serial execution reads.
fn run(txn: &Txn, store: &Store) -> Option<Store> {
    let mut store = store.clone();
    for mop in &txn.mops {
        match mop {
            Mop::Append { key, value } => store.entry(*key).or_default().push(*value),
            Mop::Write { key, value } => {
                store.insert(*key, vec![*value]);
            }
            Mop::Read { key, value } => {
                let current = store.get(key).map(Vec::as_slice).unwrap_or(&[]);
                let matches = match value {
                    ReadValue::Unknown => true,
                    ReadValue::List(list) => list.as_slice() == current,
                    ReadValue::Register(v) => current.last() == v.as_ref(),
                };
                if !matches {
                    return None;
                }
            }
        }
    }
    Some(store)
}

/// `ok` transactions whose reads contradict their own earlier micro-ops, whatever others did: a
/// read after the transaction's own appends must end with them (and equal the previous read plus
/// them, when the key was read before); a register read after the transaction's own write or read
/// must return that value.
pub fn internal_violations(history: &TxnHistory) -> Vec<usize> {
    history
        .txns
        .iter()
        .filter(|t| t.outcome == Outcome::Ok && !internally_consistent(t))
        .map(|t| t.id)
        .collect()
}

fn internally_consistent(txn: &Txn) -> bool {
    /// What the transaction knows of a key so far: the whole value if it read or wrote it, and the
    /// elements it appended since.
    #[derive(Default)]
    struct Known {
        whole: Option<Vec<Elem>>,
        appended: Vec<Elem>,
    }
    let mut known: BTreeMap<Key, Known> = BTreeMap::new();
    for mop in &txn.mops {
        let k = known.entry(mop.key()).or_default();
        match mop {
            Mop::Append { value, .. } => k.appended.push(*value),
            Mop::Write { value, .. } => {
                k.whole = Some(vec![*value]);
                k.appended.clear();
            }
            Mop::Read { value, .. } => {
                let read: Vec<Elem> = match value {
                    ReadValue::Unknown => continue,
                    ReadValue::List(list) => list.clone(),
                    ReadValue::Register(v) => v.iter().copied().collect(),
                };
                let consistent = match (&k.whole, value) {
                    (Some(whole), ReadValue::List(_)) => {
                        let mut expected = whole.clone();
                        expected.extend(&k.appended);
                        read == expected
                    }
                    (None, ReadValue::List(_)) => read.ends_with(&k.appended),
                    (Some(whole), _) => whole.last() == read.last(),
                    (None, _) => true,
                };
                if !consistent {
                    return false;
                }
                k.whole = Some(read);
                k.appended.clear();
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::TxnWorkload;

    /// A transaction from `(outcome, call, ret, mops)`; ids follow the order given.
    fn history(workload: TxnWorkload, txns: Vec<(Outcome, usize, usize, Vec<Mop>)>) -> TxnHistory {
        TxnHistory {
            key_names: Default::default(),
            workload,
            txns: txns
                .into_iter()
                .enumerate()
                .map(|(id, (outcome, call, ret, mops))| Txn {
                    id,
                    process: id as u64,
                    outcome,
                    mops,
                    call,
                    ret: Some(ret),
                    invoke_index: call as u64,
                    complete_index: Some(ret as u64),
                })
                .collect(),
        }
    }

    fn append(key: Key, value: Elem) -> Mop {
        Mop::Append { key, value }
    }
    fn read_list(key: Key, list: &[Elem]) -> Mop {
        Mop::Read {
            key,
            value: ReadValue::List(list.to_vec()),
        }
    }
    fn write(key: Key, value: Elem) -> Mop {
        Mop::Write { key, value }
    }
    fn read_reg(key: Key, value: Option<Elem>) -> Mop {
        Mop::Read {
            key,
            value: ReadValue::Register(value),
        }
    }

    #[test]
    fn a_read_before_a_concurrent_append_orders_the_reader_first() {
        let h = history(
            TxnWorkload::ListAppend,
            vec![
                (Outcome::Ok, 0, 3, vec![append(1, 1)]),
                (Outcome::Ok, 1, 2, vec![read_list(1, &[])]),
            ],
        );
        assert_eq!(serial_order(&h, Order::StrictSerial), Ok(Some(vec![1, 0])));
    }

    #[test]
    fn a_stale_read_after_the_append_completed_is_only_serializable() {
        let h = history(
            TxnWorkload::ListAppend,
            vec![
                (Outcome::Ok, 0, 1, vec![append(1, 1)]),
                (Outcome::Ok, 2, 3, vec![read_list(1, &[])]),
            ],
        );
        assert_eq!(is_serializable(&h), Ok(true));
        assert_eq!(is_strict_serializable(&h), Ok(false));
    }

    #[test]
    fn read_skew_has_no_serial_order() {
        // T0 appends to both keys; T1 sees it on key 2 but not on key 1: G-single.
        let h = history(
            TxnWorkload::ListAppend,
            vec![
                (Outcome::Ok, 0, 2, vec![append(1, 1), append(2, 1)]),
                (
                    Outcome::Ok,
                    1,
                    3,
                    vec![read_list(1, &[]), read_list(2, &[1])],
                ),
            ],
        );
        assert_eq!(is_serializable(&h), Ok(false));
    }

    #[test]
    fn info_transactions_may_or_may_not_happen_but_fail_ones_never_do() {
        let seen = |outcome| {
            history(
                TxnWorkload::RwRegister,
                vec![
                    (outcome, 0, 1, vec![write(1, 5)]),
                    (Outcome::Ok, 2, 3, vec![read_reg(1, Some(5))]),
                ],
            )
        };
        assert_eq!(is_strict_serializable(&seen(Outcome::Info)), Ok(true));
        assert_eq!(is_serializable(&seen(Outcome::Fail)), Ok(false));
        let unseen = history(
            TxnWorkload::RwRegister,
            vec![
                (Outcome::Info, 0, 1, vec![write(1, 5)]),
                (Outcome::Ok, 2, 3, vec![read_reg(1, None)]),
            ],
        );
        assert_eq!(is_strict_serializable(&unseen), Ok(true));
    }

    #[test]
    fn an_info_transaction_may_take_effect_after_it_completes() {
        // The info write completes (as info) before the first read is invoked, yet the first read
        // misses it and the second sees it: fine, it took effect late.
        let h = history(
            TxnWorkload::RwRegister,
            vec![
                (Outcome::Info, 0, 1, vec![write(1, 5)]),
                (Outcome::Ok, 2, 3, vec![read_reg(1, None)]),
                (Outcome::Ok, 4, 5, vec![read_reg(1, Some(5))]),
            ],
        );
        assert_eq!(
            serial_order(&h, Order::StrictSerial),
            Ok(Some(vec![1, 0, 2]))
        );
    }

    #[test]
    fn reads_see_the_transactions_own_writes() {
        let own = history(
            TxnWorkload::ListAppend,
            vec![(
                Outcome::Ok,
                0,
                1,
                vec![
                    append(1, 1),
                    read_list(1, &[1]),
                    append(1, 2),
                    read_list(1, &[1, 2]),
                ],
            )],
        );
        assert_eq!(is_strict_serializable(&own), Ok(true));
        assert!(internal_violations(&own).is_empty());
        let blind = history(
            TxnWorkload::ListAppend,
            vec![(Outcome::Ok, 0, 1, vec![append(1, 1), read_list(1, &[])])],
        );
        assert_eq!(is_serializable(&blind), Ok(false));
        assert_eq!(internal_violations(&blind), vec![0]);
        let reg = history(
            TxnWorkload::RwRegister,
            vec![(
                Outcome::Ok,
                0,
                1,
                vec![read_reg(1, Some(3)), read_reg(1, Some(4))],
            )],
        );
        assert_eq!(internal_violations(&reg), vec![0]);
    }

    #[test]
    fn a_read_of_other_appends_before_ones_own_is_internally_consistent() {
        let h = history(
            TxnWorkload::ListAppend,
            vec![(Outcome::Ok, 0, 1, vec![append(1, 2), read_list(1, &[1, 2])])],
        );
        assert!(internal_violations(&h).is_empty());
        // ...but no serial order explains it: nobody appended 1.
        assert_eq!(is_serializable(&h), Ok(false));
    }

    #[test]
    fn too_many_transactions_are_refused() {
        let txns = (0..=MAX_TXNS)
            .map(|i| (Outcome::Ok, 2 * i, 2 * i + 1, vec![append(1, i as Elem)]))
            .collect();
        let h = history(TxnWorkload::ListAppend, txns);
        assert_eq!(is_serializable(&h), Err(TooLarge { txns: MAX_TXNS + 1 }));
    }
}
