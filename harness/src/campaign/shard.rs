//! `fissure campaign --shard K/N`: the K-th of N slices of a campaign's runs, the same slices on
//! every machine, balanced by how long each run is expected to take, so that N CI jobs (a
//! GitHub Actions matrix, a Kubernetes Indexed Job) share one campaign and `fissure merge`
//! puts the results back together.

use super::PlannedRun;
use crate::spec::BackendKind;
use anyhow::bail;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// One slice of a campaign: `index` of `count`, counted from 1 as people write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole campaign, as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = || format!("--shard {s:?}: expected K/N with 1 <= K <= N <= 1000, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(usage)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| usage())?,
            n.trim().parse::<usize>().map_err(|_| usage())?,
        );
        if index == 0 || index > count || count > 1000 {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

/// How long a run is expected to take, in seconds: its time limit plus what bringing up its
/// cluster usually costs on its backend (measured figures in BENCHMARKS.md, rounded up).
pub fn expected_seconds(run: &PlannedRun) -> f64 {
    let setup = match run.spec.backend {
        BackendKind::Local | BackendKind::None => 5.0,
        BackendKind::Docker | BackendKind::Ssh => 20.0,
        BackendKind::Vagrant => 120.0,
    };
    run.spec.time_limit.as_secs_f64() + setup
}

/// Which shard (0-based) each run goes to: longest runs first, each to the shard with the least
/// expected time so far (ties to the lowest shard; equal runs in campaign order). It depends only
/// on the expanded campaign, so every machine computes the same split.
pub fn assign(runs: &[PlannedRun], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    let cost: Vec<f64> = runs.iter().map(expected_seconds).collect();
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]).then(a.cmp(&b)));
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard_of = vec![0; runs.len()];
    for i in order {
        let lightest = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[lightest] += cost[i];
        shard_of[i] = lightest;
    }
    shard_of
}

/// The runs of `shard`, in campaign order.
pub fn select(runs: Vec<PlannedRun>, shard: Shard) -> anyhow::Result<Vec<PlannedRun>> {
    if shard.count > runs.len() {
        bail!(
            "--shard {shard}: the campaign has {} runs, fewer than {} shards; use at most {} shards",
            runs.len(),
            shard.count,
            runs.len()
        );
    }
    let shard_of = assign(&runs, shard.count);
    Ok(runs
        .into_iter()
        .zip(shard_of)
        .filter(|(_, s)| *s + 1 == shard.index)
        .map(|(run, _)| run)
        .collect())
}

/// A seed every shard derives alike for a run whose campaign names none: from the campaign,
/// the run's place in the matrix and a salt (e.g. the date or the CI pipeline's id, so each
/// night tries new seeds while its shards agree).
pub fn derived_seed(salt: &str, parts: &[&str]) -> u64 {
    let mut hash = Sha256::new();
    hash.update(salt.as_bytes());
    for part in parts {
        hash.update([0]);
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // Below 2^53: the seed stays exact wherever it is written as a JSON number.
    u64::from_le_bytes(bytes) >> 11
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::Campaign;

    const MIXED: &str = r#"
name = "mixed"
[defaults]
nodes = 3
time-limit = "8s"
nemesis-interval = "1s"
[[runs]]
targets = ["raft-kv", "quorum"]
fault-sets = [["partition"], ["kill"]]
seeds = [1, 2, 3]
[[runs]]
label = "long"
targets = ["raft-kv"]
time-limit = "40s"
seeds = [1, 2]
"#;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/1001"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_run_lands_in_exactly_one_shard_and_the_load_is_balanced() {
        let campaign = Campaign::parse(MIXED, None).unwrap();
        let total = campaign.runs.len();
        for count in 1..=5 {
            let mut seen = Vec::new();
            let mut loads = Vec::new();
            for index in 1..=count {
                let runs = select(campaign.runs.clone(), Shard { index, count }).unwrap();
                loads.push(runs.iter().map(expected_seconds).sum::<f64>());
                seen.extend(runs.into_iter().map(|r| r.name));
            }
            seen.sort();
            let mut all: Vec<String> = campaign.runs.iter().map(|r| r.name.clone()).collect();
            all.sort();
            assert_eq!(seen, all, "{count} shards");
            let (max, min) = (
                loads.iter().cloned().fold(0.0, f64::max),
                loads.iter().cloned().fold(f64::MAX, f64::min),
            );
            // Greedy longest-first: no shard exceeds another by more than the longest run.
            assert!(max - min <= 45.0 + 1e-9, "{count} shards: {loads:?}");
        }
        assert_eq!(total, 12 + 2);
        // Same split every time it is computed.
        assert_eq!(assign(&campaign.runs, 3), assign(&campaign.runs, 3));
        let error = select(
            campaign.runs.clone(),
            Shard {
                index: 1,
                count: 20,
            },
        )
        .unwrap_err();
        assert!(
            format!("{error}").contains("fewer than 20 shards"),
            "{error}"
        );
    }

    #[test]
    fn derived_seeds_are_stable_and_differ_by_salt_and_run() {
        let a = derived_seed("2026-12-04", &["nightly", "runs1", "raft-kv"]);
        assert_eq!(
            a,
            derived_seed("2026-12-04", &["nightly", "runs1", "raft-kv"])
        );
        assert_ne!(
            a,
            derived_seed("2026-12-05", &["nightly", "runs1", "raft-kv"])
        );
        assert_ne!(
            a,
            derived_seed("2026-12-04", &["nightly", "runs1", "quorum"])
        );
        assert!(a < 1 << 53);
    }
}
