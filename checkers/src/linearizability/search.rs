//! The Wing–Gong–Lowe search over one partition of a history.
//!
//! Calls and returns sit in a doubly linked list in time order. The search walks the list: at a
//! call it tries to linearize that operation now (the model must accept it, and the resulting
//! configuration — the set of linearized operations plus the model state — must be new); at a
//! return of an operation not yet linearized it backtracks. Lifting an operation unlinks its call
//! and return ("dancing links"), so undoing is O(1).
//!
//! What makes it fast:
//! - model states are interned to `u32` ids and steps memoized per `(state, op)`, so the model runs
//!   once per distinct transition, however large its state;
//! - the linearized set's hash is maintained incrementally (Zobrist: XOR of a random word per
//!   operation), so a cache probe costs O(1) unless hashes collide;
//! - the cache stores bitsets in one flat arena, with no allocation per entry.
//!
//! Indeterminate operations (`info`) have their returns after every definite return. Reaching one
//! means every definite operation is linearized: the rest may take effect later or never.
//!
//! Because indeterminate operations are optional, linearizing one that leaves the state unchanged
//! is dominated by not linearizing it, so the search never tries that.

use super::budget::Budget;
use crate::model::Model;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
/// How often (in search steps) the search looks at the clock, the memory budget and cancellation.
const CHECK_EVERY: u64 = 1 << 12;
/// How often (in search steps) a slice looks at its length and at whether another partition has
/// already decided the verdict: often, so that an invalid partition found by one thread stops the
/// others within microseconds.
const SLICE_CHECK_EVERY: u64 = 1 << 6;

/// One operation of a partition, ready for the search.
#[derive(Clone, Debug)]
pub(crate) struct SearchOp<O> {
    pub op: O,
    /// Position of the invocation in the history's events (orders calls and returns).
    pub call: usize,
    /// Position of the completion; `None` for an indeterminate operation.
    pub ret: Option<usize>,
}

/// Why a partition is not linearizable: the deepest point the search reached.
#[derive(Clone, Debug)]
pub(crate) struct Stuck<S> {
    /// The longest linearization found, as partition-local operation indices in order.
    pub prefix: Vec<u32>,
    /// The operation whose return was reached while it could not be linearized.
    pub blocked: u32,
    /// Distinct model states the search was in when it got stuck at that depth (bounded).
    pub states: Vec<S>,
    /// Operations not linearized whose call precedes the blocked return: the candidates.
    pub pending: Vec<u32>,
}

pub(crate) enum SearchResult<S> {
    Linearizable,
    NotLinearizable(Box<Stuck<S>>),
    Aborted,
}

/// Search statistics, for progress and results.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SearchStats {
    pub steps: u64,
    pub configurations: u64,
    pub states: u64,
}

struct Frame {
    op: u32,
    state: u32,
    /// Taken because it was a read that fit (see `force_reads`): the configuration below it
    /// fails exactly when this frame's subtree does, so no sibling needs trying.
    forced: bool,
}

/// What opening a configuration found.
enum Opened {
    /// Every definite operation is linearized.
    Linearized,
    /// A pending read can no longer succeed: the configuration fails.
    Dead,
    /// Candidates are listed in a new level.
    Open,
}

/// The choices at one configuration: candidates in `Search::candidates[start..]`, tried in order.
struct Level {
    start: u32,
    cursor: u32,
    /// The operation whose return bounds this configuration (the first pending return).
    blocked: u32,
}

#[derive(Clone, Copy)]
struct CacheEntry {
    hash: u64,
    state: u32,
    /// Index of the definite set in `Bitsets::arena` (equal sets share a slot).
    definite: u32,
    /// Index of the indeterminate set in its arena (unused when there are none).
    indeterminate: u32,
}

/// Sets of operations stored flat, `words` per set.
struct Bitsets {
    words: usize,
    current: Vec<u64>,
    arena: Vec<u64>,
}

impl Bitsets {
    fn new(members: usize) -> Bitsets {
        let words = members.div_ceil(64);
        Bitsets {
            words,
            current: vec![0; words],
            arena: Vec::new(),
        }
    }

    /// Room for `sets` more stored sets before the arena next grows.
    fn reserve(&mut self, sets: usize) {
        self.arena.reserve(self.words * sets);
    }

    fn flip(&mut self, member: u32) {
        self.current[member as usize / 64] ^= 1 << (member % 64);
    }

    fn stored(&self, slot: u32) -> &[u64] {
        let at = slot as usize * self.words;
        &self.arena[at..at + self.words]
    }

    fn equals_current(&self, slot: u32) -> bool {
        self.stored(slot) == &self.current[..]
    }

    fn store_current(&mut self) -> u32 {
        if self.words == 0 {
            return 0;
        }
        let slot = (self.arena.len() / self.words) as u32;
        self.arena.extend_from_slice(&self.current);
        slot
    }
}

/// Interned model states and memoized steps.
struct States<'m, M: Model> {
    model: &'m M,
    values: Vec<M::State>,
    /// What the interned states hold, by the model's estimate.
    bytes: usize,
    /// `(hash, id)`: the hash is kept so growing the table never hashes a state again (a
    /// state can be a long string).
    ids: HashTable<(u64, u32)>,
    steps: FxHashMap<u64, u32>,
    /// Whether to memoize steps: only once the search has backtracked, since until then it
    /// never asks for the same step twice (save a read it tried before, which is cheap).
    memoize: bool,
}

impl<'m, M: Model> States<'m, M> {
    /// `expected`: about how many states the search will meet, to size the tables once.
    fn new(model: &'m M, expected: usize) -> Self {
        // The step memo starts empty: many searches never backtrack, and never use it.
        let mut states = States {
            model,
            values: Vec::with_capacity(expected),
            bytes: 0,
            ids: HashTable::with_capacity(expected),
            steps: FxHashMap::default(),
            memoize: false,
        };
        states.intern(model.init());
        states
    }

    fn intern(&mut self, state: M::State) -> u32 {
        let hasher = FxBuildHasher;
        let hash = hasher.hash_one(&state);
        let values = &self.values;
        if let Some(&(_, id)) = self
            .ids
            .find(hash, |&(h, id)| h == hash && values[id as usize] == state)
        {
            return id;
        }
        let id = self.values.len() as u32;
        self.bytes += self.model.state_bytes(&state);
        self.values.push(state);
        self.ids.insert_unique(hash, (hash, id), |&(h, _)| h);
        id
    }

    /// The state after `op` in `state`, or `NIL` when the model rejects it. A read-only `op`
    /// leaves the state as it was, so its result is not interned (hashed and compared) again.
    fn step(&mut self, state: u32, op_index: u32, op: &M::Op, read_only: bool) -> u32 {
        let key = (u64::from(state) << 32) | u64::from(op_index);
        if self.memoize {
            if let Some(&next) = self.steps.get(&key) {
                return next;
            }
        }
        let current = &self.values[state as usize];
        let next = if read_only {
            if self.model.admits(current, op) {
                state
            } else {
                NIL
            }
        } else {
            match self.model.step(current, op) {
                Some(s) => self.intern(s),
                None => NIL,
            }
        };
        if self.memoize {
            self.steps.insert(key, next);
        }
        next
    }

    fn approx_bytes(&self) -> usize {
        // The table of ids and the step memo, plus the states themselves.
        self.values.capacity() * std::mem::size_of::<M::State>()
            + self.ids.capacity() * 13
            + self.steps.capacity() * 17
            + self.bytes
    }
}

/// Runs a whole search, or at most `max_steps` of it (`None`: it did not finish in them). `ops`
/// must be in invocation order. Adds the steps taken to `stats`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: &Budget,
    max_steps: u64,
    stats: &mut SearchStats,
) -> Option<SearchResult<M::State>> {
    let mut search = Search::new(model, ops, budget);
    let result = search.resume(max_steps, &AtomicBool::new(false));
    search.finish(stats);
    result
}

/// A search that can run in slices, so many partitions can share the cores fairly.
pub(crate) struct Search<'a, M: Model> {
    ops: &'a [SearchOp<M::Op>],
    budget: &'a Budget,
    states: States<'a, M>,
    // The list: node 0 is the head; node 2i+1 is op i's call, 2i+2 its return.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Operations that never change the state (reads), per the model.
    read_only: Vec<bool>,
    /// Each operation's member number in `definite` or `indeterminate`.
    member: Vec<u32>,
    definite: Bitsets,
    indeterminate: Bitsets,
    /// Zobrist hash of the definite set: XOR of `zobrist[op]` over its members.
    zobrist: Vec<u64>,
    hash: u64,
    cache: HashTable<CacheEntry>,
    stack: Vec<Frame>,
    best: Option<Stuck<u32>>,
    /// Bytes last reported to the budget.
    reported: usize,
    /// Open configurations' candidate lists, innermost last.
    levels: Vec<Level>,
    candidates: Vec<u32>,
    /// Where the walk is, so a slice can end anywhere and the next resume there.
    state: u32,
    fresh: bool,
    /// Reused buffer for `unsatisfiable_read`.
    scratch: Vec<u32>,
    /// Whether to look ahead for reads that can no longer succeed: only once the search has
    /// had to backtrack, since a search that never does (most partitions of a valid history)
    /// gains nothing from it.
    pruning: bool,
    /// Whether configurations go into the cache yet: not until the first backtrack, since a
    /// search that only goes forward never meets one twice (see `start_recording`).
    recording: bool,
    /// Distinct configurations entered.
    configurations: u64,
    steps: u64,
}

fn call_node(op: u32) -> u32 {
    2 * op + 1
}
fn ret_node(op: u32) -> u32 {
    2 * op + 2
}
fn node_op(node: u32) -> (u32, bool) {
    ((node - 1) / 2, node % 2 == 1)
}

/// About how many configurations and states a search of `n` operations meets: tables are sized
/// for it once, since growing them from nothing rehashes them again and again (capped: a hard
/// search grows them anyway).
fn expected_configurations(n: usize) -> usize {
    (2 * n).min(1 << 14)
}

/// Operations by the position of their return (indeterminate ones last, in call order), with
/// that position. Returns come nearly sorted when taken in call order (an operation rarely
/// overlaps more than a few others), so an insertion sort costs little more than a pass; one that
/// has to shift too much gives way to a full sort.
fn returns_in_order<O>(ops: &[SearchOp<O>]) -> Vec<(u32, usize)> {
    let n = ops.len();
    let mut definite: Vec<(u32, usize)> = Vec::with_capacity(n);
    let mut shifts = 0usize;
    for (op, o) in ops.iter().enumerate() {
        let Some(position) = o.ret else { continue };
        definite.push((op as u32, position));
        let mut at = definite.len() - 1;
        while at > 0 && definite[at - 1].1 > position && shifts <= 8 * n {
            definite.swap(at - 1, at);
            at -= 1;
            shifts += 1;
        }
    }
    if shifts > 8 * n {
        definite.sort_unstable_by_key(|&(_, position)| position);
    }
    let indeterminate = ops.iter().enumerate().filter(|(_, o)| o.ret.is_none());
    definite.extend(indeterminate.map(|(op, o)| (op as u32, usize::MAX / 2 + o.call)));
    definite
}

/// SplitMix64: deterministic, well-mixed words for Zobrist hashing.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<'a, M: Model> Search<'a, M> {
    pub(crate) fn new(model: &'a M, ops: &'a [SearchOp<M::Op>], budget: &'a Budget) -> Self {
        let n = ops.len();
        let nodes = 2 * n + 1;
        let expected = expected_configurations(n);
        // Order nodes by time: calls and definite returns by history position; indeterminate
        // returns after everything, in call order. Calls are in order already (ops are in
        // invocation order), and returns nearly so; sort those, then merge.
        let returns = returns_in_order(ops);
        let mut next = vec![NIL; nodes];
        let mut prev = vec![NIL; nodes];
        let mut last = HEAD;
        let mut link = |node: u32| {
            next[last as usize] = node;
            prev[node as usize] = last;
            last = node;
        };
        let (mut call, mut ret) = (0u32, 0usize);
        while ret < n {
            let (returning, position) = returns[ret];
            if (call as usize) < n && ops[call as usize].call < position {
                link(call_node(call));
                call += 1;
            } else {
                link(ret_node(returning));
                ret += 1;
            }
        }
        let mut member = Vec::with_capacity(n);
        let (mut definite, mut indeterminate) = (0u32, 0u32);
        for op in ops {
            let counter = if op.ret.is_some() {
                &mut definite
            } else {
                &mut indeterminate
            };
            member.push(*counter);
            *counter += 1;
        }
        Search {
            ops,
            budget,
            read_only: ops.iter().map(|op| model.is_read_only(&op.op)).collect(),
            states: States::new(model, expected),
            next,
            prev,
            member,
            definite: Bitsets::new(definite as usize),
            indeterminate: Bitsets::new(indeterminate as usize),
            zobrist: (0..n as u64).map(splitmix).collect(),
            hash: 0,
            cache: HashTable::new(),
            stack: Vec::with_capacity(n),
            best: None,
            reported: 0,
            levels: Vec::with_capacity(n),
            candidates: Vec::with_capacity(n),
            state: 0, // the initial state is interned first
            fresh: true,
            scratch: Vec::new(),
            pruning: false,
            recording: false,
            configurations: 0,
            steps: 0,
        }
    }

    fn lift(&mut self, op: u32) {
        for node in [call_node(op), ret_node(op)] {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = n;
            if n != NIL {
                self.prev[n as usize] = p;
            }
        }
    }

    fn unlift(&mut self, op: u32) {
        for node in [ret_node(op), call_node(op)] {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = node;
            if n != NIL {
                self.prev[n as usize] = node;
            }
        }
    }

    fn toggle(&mut self, op: u32) {
        let member = self.member[op as usize];
        if self.ops[op as usize].ret.is_some() {
            self.definite.flip(member);
        } else {
            self.indeterminate.flip(member);
        }
        self.hash ^= self.zobrist[op as usize];
    }

    /// Records the current configuration; false if it, or one that dominates it, was seen.
    fn remember(&mut self, state: u32) -> bool {
        if !self.recording {
            // Going forward only, every configuration is new (it holds one operation more).
            self.configurations += 1;
            return true;
        }
        let hash = self.config_hash(state);
        let mut same_definite: Option<u32> = None;
        for entry in self.cache.iter_hash(hash) {
            if entry.hash != hash || entry.state != state {
                continue;
            }
            // Equal definite sets share one slot, so after the first match a slot compare will do.
            match same_definite {
                Some(slot) if slot != entry.definite => continue,
                None if !self.definite.equals_current(entry.definite) => continue,
                _ => same_definite = Some(entry.definite),
            }
            if self.indeterminate.words == 0
                || self.indeterminate.equals_current(entry.indeterminate)
            {
                return false;
            }
        }
        self.store(hash, state, same_definite);
        self.configurations += 1;
        true
    }

    fn config_hash(&self, state: u32) -> u64 {
        self.hash ^ splitmix(u64::from(state) ^ 0x5EED)
    }

    /// Adds the current configuration to the cache (`definite`: a stored slot equal to the
    /// current definite set, if one is known).
    fn store(&mut self, hash: u64, state: u32, definite: Option<u32>) {
        let definite = definite.unwrap_or_else(|| self.definite.store_current());
        let indeterminate = self.indeterminate.store_current();
        let entry = CacheEntry {
            hash,
            state,
            definite,
            indeterminate,
        };
        self.cache.insert_unique(hash, entry, |e| e.hash);
    }

    /// Starts recording configurations, at the search's first backtrack. Until then it only went
    /// forward, so the configurations it went through are those along the current path: they are
    /// recorded now, as they would have been on the way.
    fn start_recording(&mut self, state: u32) {
        self.recording = true;
        // Sized now rather than up front: many searches never get here.
        let expected = expected_configurations(self.ops.len());
        self.cache.reserve(expected, |e| e.hash);
        self.definite.reserve(expected);
        self.indeterminate.reserve(expected);
        let depth = self.stack.len();
        for k in (0..depth).rev() {
            let after = self.stack.get(k + 1).map_or(state, |next| next.state);
            let hash = self.config_hash(after);
            self.store(hash, after, None);
            self.toggle(self.stack[k].op);
        }
        for k in 0..depth {
            self.toggle(self.stack[k].op);
        }
    }

    fn approx_bytes(&self) -> usize {
        (self.definite.arena.capacity() + self.indeterminate.arena.capacity()) * 8
            + self.cache.capacity() * (std::mem::size_of::<CacheEntry>() + 1)
            + self.states.approx_bytes()
    }

    /// Keeps the deepest point at which the search got stuck, for the counterexample.
    fn note_stuck(&mut self, blocked: u32, state: u32) {
        let depth = self.stack.len();
        match &mut self.best {
            Some(best) if best.prefix.len() > depth => {}
            // Other states at the same depth are worth showing only if the same operation got
            // stuck in them; otherwise they explain a different failure.
            Some(best) if best.prefix.len() == depth => {
                if best.blocked == blocked && best.states.len() < 8 && !best.states.contains(&state)
                {
                    best.states.push(state);
                }
            }
            _ => {
                let pending = self.pending_before(blocked);
                self.best = Some(Stuck {
                    prefix: self.stack.iter().map(|f| f.op).collect(),
                    blocked,
                    states: vec![state],
                    pending,
                });
            }
        }
    }

    /// Calls still in the list before `blocked`'s return: operations that could have gone next.
    fn pending_before(&self, blocked: u32) -> Vec<u32> {
        let mut pending = Vec::new();
        let mut node = self.next[HEAD as usize];
        while node != NIL && node != ret_node(blocked) && pending.len() < 32 {
            let (op, is_call) = node_op(node);
            if is_call && op != blocked {
                pending.push(op);
            }
            node = self.next[node as usize];
        }
        pending
    }

    /// Linearizes every pending read that fits the current state, each as a forced frame.
    ///
    /// Sound and complete: if a linearization exists from here, one exists with the read placed
    /// now, because a read changes no state and everything that must precede it is already
    /// placed (its call has been reached). Returns false if the resulting configuration was
    /// already explored, which means the current one fails too.
    fn force_reads(&mut self, state: u32) -> bool {
        let mut node = self.next[HEAD as usize];
        while node != NIL {
            let (op, is_call) = node_op(node);
            if !is_call {
                break; // calls after the first pending return cannot go yet
            }
            if self.read_only[op as usize]
                && self.states.step(state, op, &self.ops[op as usize].op, true) == state
            {
                self.toggle(op);
                if !self.remember(state) {
                    self.toggle(op);
                    return false;
                }
                self.stack.push(Frame {
                    op,
                    state,
                    forced: true,
                });
                self.lift(op);
                node = self.next[HEAD as usize];
                continue;
            }
            node = self.next[node as usize];
        }
        true
    }

    /// Undoes frames until one whose siblings are still worth trying, whose level then goes on;
    /// `None` when the search space is exhausted.
    fn backtrack(&mut self, state: &mut u32) -> Option<()> {
        if !self.recording {
            self.start_recording(*state);
        }
        self.pruning = true;
        if !self.states.memoize {
            self.states.memoize = true;
            self.states.steps.reserve(self.states.values.capacity());
        }
        loop {
            let frame = self.stack.pop()?;
            *state = frame.state;
            self.toggle(frame.op);
            self.unlift(frame.op);
            if !frame.forced {
                return Some(());
            }
        }
    }

    /// Lists the operations that may go next: the calls before the first pending return.
    fn open_level(&mut self, state: u32) -> Opened {
        let start = self.candidates.len();
        let mut node = self.next[HEAD as usize];
        let mut blocked = NIL;
        while node != NIL {
            let (op, is_call) = node_op(node);
            if !is_call {
                if self.ops[op as usize].ret.is_none() {
                    // Only indeterminate operations remain: they may never happen.
                    return Opened::Linearized;
                }
                blocked = op;
                break;
            }
            self.candidates.push(op);
            node = self.next[node as usize];
        }
        if blocked == NIL {
            return Opened::Linearized;
        }
        if !self.pruning {
            // Nothing has failed yet: looking ahead for reads that cannot succeed would cost more
            // than it could save.
        } else if let Some(read) = self.unsatisfiable_read(state, start) {
            self.candidates.truncate(start);
            self.note_stuck(read, state);
            return Opened::Dead;
        }
        // Earliest return first: an operation must be placed before its return, so deadlines
        // are the better guide. (Plain WGL tries the earliest call first, which keeps placing
        // long-running operations too early.)
        let ops = self.ops;
        self.candidates[start..].sort_by_key(|&op| ops[op as usize].ret.unwrap_or(usize::MAX));
        self.levels.push(Level {
            start: start as u32,
            cursor: start as u32,
            blocked,
        });
        Opened::Open
    }

    /// Asks the model whether each pending read among the candidates can still succeed, given
    /// the operations that could yet precede it (every call before its return), in one walk.
    /// Returns a read that cannot.
    fn unsatisfiable_read(&mut self, state: u32, start: usize) -> Option<u32> {
        let mut unchecked = self.candidates[start..]
            .iter()
            .filter(|&&op| self.read_only[op as usize])
            .count();
        if unchecked == 0 {
            return None;
        }
        let model = self.states.model;
        let current = &self.states.values[state as usize];
        let mut calls = std::mem::take(&mut self.scratch);
        calls.clear();
        let mut node = self.next[HEAD as usize];
        let mut unsatisfiable = None;
        while node != NIL && unchecked > 0 {
            let (op, is_call) = node_op(node);
            if is_call {
                calls.push(op);
            } else if self.read_only[op as usize] && self.ops[op as usize].ret.is_some() {
                if calls.contains(&op) {
                    unchecked = unchecked.saturating_sub(1);
                }
                let read = &self.ops[op as usize].op;
                let ops = self.ops;
                let mut others = calls
                    .iter()
                    .filter(|&&o| o != op)
                    .map(|&o| &ops[o as usize].op);
                if !model.can_satisfy(current, read, &mut others) {
                    unsatisfiable = Some(op);
                    break;
                }
            }
            node = self.next[node as usize];
        }
        self.scratch = calls;
        unsatisfiable
    }

    /// Runs for at most about `slice` steps, or until `decided` is set (another partition settled
    /// the verdict). `None` means unfinished: call again to go on.
    pub(crate) fn resume(
        &mut self,
        slice: u64,
        decided: &AtomicBool,
    ) -> Option<SearchResult<M::State>> {
        let (mut state, mut fresh) = (self.state, self.fresh);
        let mut since_check = 0u64;
        let mut since_slice_check = 0u64;
        let mut taken = 0u64;
        let result = loop {
            since_slice_check += 1;
            if since_slice_check == SLICE_CHECK_EVERY {
                since_slice_check = 0;
                since_check += SLICE_CHECK_EVERY;
                taken += SLICE_CHECK_EVERY;
                if since_check >= CHECK_EVERY {
                    let bytes = self.approx_bytes();
                    let verdict = self.budget.check(&mut self.reported, bytes, since_check);
                    since_check = 0;
                    if verdict.is_err() {
                        break Some(SearchResult::Aborted);
                    }
                }
                if taken >= slice || decided.load(Ordering::Relaxed) {
                    break None;
                }
            }
            if fresh {
                fresh = false;
                if !self.force_reads(state) {
                    match self.backtrack(&mut state) {
                        Some(()) => continue,
                        None => break Some(self.stuck()),
                    }
                }
                match self.open_level(state) {
                    Opened::Open => {}
                    Opened::Linearized => break Some(SearchResult::Linearizable),
                    Opened::Dead => match self.backtrack(&mut state) {
                        Some(()) => continue,
                        None => break Some(self.stuck()),
                    },
                }
            }
            let level = self.levels.last_mut().expect("a configuration is open");
            if (level.cursor as usize) < self.candidates.len() {
                let op = self.candidates[level.cursor as usize];
                level.cursor += 1;
                let read_only = self.read_only[op as usize];
                let next_state = self
                    .states
                    .step(state, op, &self.ops[op as usize].op, read_only);
                // An indeterminate operation that changes nothing is dominated by not doing it.
                let pointless = next_state == state && self.ops[op as usize].ret.is_none();
                if next_state == NIL || pointless {
                    continue;
                }
                self.toggle(op);
                if !self.remember(next_state) {
                    self.toggle(op);
                    continue;
                }
                self.stack.push(Frame {
                    op,
                    state,
                    forced: false,
                });
                state = next_state;
                self.lift(op);
                fresh = true;
            } else {
                // Every candidate failed: this configuration cannot reach its bounding return.
                let (blocked, start) = (level.blocked, level.start);
                self.note_stuck(blocked, state);
                self.candidates.truncate(start as usize);
                self.levels.pop();
                if self.backtrack(&mut state).is_none() {
                    break Some(self.stuck());
                }
            }
        };
        self.budget
            .progress
            .steps
            .fetch_add(since_check + since_slice_check, Ordering::Relaxed);
        self.steps += taken + since_slice_check;
        (self.state, self.fresh) = (state, fresh);
        result
    }

    /// How far the search has got: the length of the longest linearization found, and the number
    /// of operations it must place.
    pub(crate) fn reached(&self) -> (usize, usize) {
        let deepest = self.best.as_ref().map_or(0, |best| best.prefix.len());
        (deepest.max(self.stack.len()), self.ops.len())
    }

    /// Adds this search's effort to `stats` and returns its memory to the budget.
    pub(crate) fn finish(self, stats: &mut SearchStats) {
        stats.steps += self.steps;
        stats.configurations += self.configurations;
        stats.states += self.states.values.len() as u64;
        self.budget.release(self.reported);
    }

    fn stuck(&mut self) -> SearchResult<M::State> {
        let best = self
            .best
            .take()
            .expect("a failed search got stuck somewhere");
        let states = best
            .states
            .iter()
            .map(|&id| self.states.values[id as usize].clone())
            .collect();
        SearchResult::NotLinearizable(Box::new(Stuck {
            prefix: best.prefix,
            blocked: best.blocked,
            states,
            pending: best.pending,
        }))
    }
}
