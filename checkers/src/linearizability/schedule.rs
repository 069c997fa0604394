//! Which partition's search runs when: rounds of growing slices, least advanced first.
//!
//! A history is invalid as soon as one partition is, so on an invalid history the time to the
//! verdict is the time until the *cheapest* invalid partition is refuted, and nothing says in
//! advance which one that is. Every partition therefore gets an equal slice of search steps per
//! round, slices doubling from round to round (in steps, not time, so the work done does not depend
//! on thread timing), and the first partition proven invalid stops the others within a few dozen
//! steps.
//!
//! On top of that fair share, the partitions whose searches have advanced least into their
//! histories get a larger slice. Refuting a partition means exhausting every configuration before
//! the return it cannot get past, and there are fewer of those the earlier that return is: a search
//! that stays stuck near the start is usually the cheapest to finish. The bonus at most doubles a
//! round's work, so a wrong guess costs at most a factor of two, and on a valid history, where
//! every partition must finish anyway, it costs nothing.

use super::search::{Search, SearchResult, SearchStats};
use super::sequential;
use super::{budget::Budget, Finished, Partition, PartitionOutcome};
use crate::model::Model;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The first round's slice, in search steps; each round doubles it. Small, so that a partition
/// that is quickly proven invalid does not wait behind many hard ones.
const FIRST_SLICE: u64 = 1 << 8;

/// Rounds run on the calling thread until the searches could have taken this many steps (a few
/// milliseconds): handing work to the pool's threads and waking them costs tens of microseconds,
/// more than a small history's whole check.
const POOL_AFTER_STEPS: u64 = 1 << 15;

/// Runs every partition's search to its end, or until one is proven invalid. The first rounds run
/// on the calling thread (a small history never wakes the thread pool); later rounds share the
/// pool's threads through one queue, least advanced partitions first.
///
/// Returns the finished partitions' outcomes in key order, and the effort spent.
pub(crate) fn run_in_rounds<M: Model>(
    model: &M,
    partitions: &[Partition<M::Op>],
    budget: &Budget,
) -> (Vec<Finished<M::State>>, SearchStats) {
    let mut outcomes = Vec::new();
    let mut stats = SearchStats::default();
    // Set once any partition is proven invalid: the verdict cannot change, so the rest stop.
    let decided = AtomicBool::new(false);
    let mut finished = |i: usize, result: SearchResult<M::State>| {
        if matches!(result, SearchResult::NotLinearizable(_)) {
            decided.store(true, Ordering::Relaxed);
        }
        budget
            .progress
            .partitions_done
            .fetch_add(1, Ordering::Relaxed);
        outcomes.push((i, PartitionOutcome::from(result)));
    };
    // The first round runs on the calling thread as the searches are built, so that once one
    // partition is proven invalid the rest are not even set up. Partitions with no overlapping
    // operations need no search.
    let mut tasks: Vec<(usize, Search<M>)> = Vec::new();
    for (i, partition) in partitions.iter().enumerate() {
        if decided.load(Ordering::Relaxed) {
            break;
        }
        if sequential::is_sequential(&partition.ops) {
            finished(i, sequential::check(model, &partition.ops, &mut stats));
            continue;
        }
        let mut search = Search::new(model, &partition.ops, budget);
        match run_slice(&mut search, FIRST_SLICE, &decided) {
            Some(result) => {
                search.finish(&mut stats);
                finished(i, result);
            }
            None => tasks.push((i, search)),
        }
    }
    let mut slice = FIRST_SLICE * 2;
    // The most steps the rounds so far could have taken.
    let mut allowed = FIRST_SLICE * partitions.len() as u64;
    while !tasks.is_empty() && !decided.load(Ordering::Relaxed) {
        prioritize(&mut tasks);
        let results = if tasks.len() == 1 || allowed < POOL_AFTER_STEPS {
            let favoured = Favoured::new(tasks.len());
            tasks
                .iter_mut()
                .enumerate()
                .map(|(at, (_, search))| run_slice(search, favoured.slice(at, slice), &decided))
                .collect()
        } else {
            run_round_in_pool(&mut tasks, slice, &decided)
        };
        allowed = allowed.saturating_add(slice.saturating_mul(tasks.len() as u64));
        let mut unfinished = Vec::new();
        for ((i, search), result) in tasks.into_iter().zip(results) {
            match result {
                Some(result) => {
                    search.finish(&mut stats);
                    finished(i, result);
                }
                None => unfinished.push((i, search)),
            }
        }
        tasks = unfinished;
        slice = slice.saturating_mul(2);
    }
    // Searches left when the verdict was settled.
    for (_, search) in tasks {
        search.finish(&mut stats);
    }
    outcomes.sort_by_key(|(i, _)| *i);
    (outcomes, stats)
}

impl<S> From<SearchResult<S>> for PartitionOutcome<S> {
    fn from(result: SearchResult<S>) -> Self {
        match result {
            SearchResult::Linearizable => PartitionOutcome::Valid,
            SearchResult::NotLinearizable(stuck) => PartitionOutcome::Invalid(stuck),
            SearchResult::Aborted => PartitionOutcome::Aborted,
        }
    }
}

fn run_slice<M: Model>(
    search: &mut Search<M>,
    slice: u64,
    decided: &AtomicBool,
) -> Option<SearchResult<M::State>> {
    let result = search.resume(slice, decided);
    if matches!(result, Some(SearchResult::NotLinearizable(_))) {
        decided.store(true, Ordering::Relaxed);
    }
    result
}

/// Orders tasks least advanced first (the share of their operations the longest linearization
/// found covers), larger partitions first among equals.
fn prioritize<M: Model>(tasks: &mut [(usize, Search<M>)]) {
    tasks.sort_by(|(_, a), (_, b)| {
        let (reached_a, len_a) = a.reached();
        let (reached_b, len_b) = b.reached();
        // reached_a / len_a against reached_b / len_b, in integers.
        (reached_a * len_b)
            .cmp(&(reached_b * len_a))
            .then(len_b.cmp(&len_a))
    });
}

/// The first tasks of a round (in [`prioritize`]'s order) get a larger slice: as many as the pool
/// has threads, with bonuses that together at most double the round's work.
struct Favoured {
    count: usize,
    bonus: u64,
}

impl Favoured {
    fn new(tasks: usize) -> Favoured {
        let count = rayon::current_num_threads().max(1);
        Favoured {
            count,
            bonus: (tasks / count).max(1) as u64,
        }
    }

    /// The slice of the task at position `at` in the round.
    fn slice(&self, at: usize, slice: u64) -> u64 {
        if at < self.count {
            slice.saturating_mul(self.bonus)
        } else {
            slice
        }
    }
}

/// A task in a round's queue: its search, and what its slice ended with.
struct Slot<'s, 'a, M: Model> {
    search: &'s mut Search<'a, M>,
    result: Option<SearchResult<M::State>>,
}

/// One round on the thread pool: workers take tasks from one queue in order, so the least
/// advanced partitions, which also get the larger slices, start first.
fn run_round_in_pool<M: Model>(
    tasks: &mut [(usize, Search<M>)],
    slice: u64,
    decided: &AtomicBool,
) -> Vec<Option<SearchResult<M::State>>> {
    let favoured = Favoured::new(tasks.len());
    let threads = favoured.count;
    let queue: Vec<Mutex<Slot<M>>> = tasks
        .iter_mut()
        .map(|(_, search)| {
            Mutex::new(Slot {
                search,
                result: None,
            })
        })
        .collect();
    let next = AtomicUsize::new(0);
    rayon::scope(|scope| {
        for _ in 0..threads.min(queue.len()) {
            scope.spawn(|_| loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = queue.get(at) else { break };
                let mut task = task.lock().unwrap_or_else(|e| e.into_inner());
                task.result = run_slice(task.search, favoured.slice(at, slice), decided);
            });
        }
    });
    queue
        .into_iter()
        .map(|task| task.into_inner().unwrap_or_else(|e| e.into_inner()).result)
        .collect()
}
