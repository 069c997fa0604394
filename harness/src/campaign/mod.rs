//! Campaigns (DESIGN.md §8): a TOML file naming a matrix of runs (targets × workloads × fault
//! sets × seeds × repeats), each with an expectation, run by `fissure campaign`.
//!
//! ```toml
//! name = "smoke"
//! [defaults]                    # any `fissure run` setting, for every run
//! nodes = 3
//! time-limit = "8s"
//! [[runs]]                      # one matrix: lists multiply
//! targets = ["raft-kv", "quorum"]
//! fault-sets = [["partition"], ["partition", "kill"]]
//! seeds = [1, 2]
//! [[runs]]
//! label = "stale-read"          # names the runs (default: the bug, else "runs<i>")
//! targets = ["raft-kv"]
//! bug = "stale-read"            # any run setting overrides [defaults]
//! expect = "invalid"            # a planted bug that must be found
//! ```
//!
//! Every run is resolved (and so checked) before any starts, so a typo fails the campaign at
//! once, naming the entry and the setting.

pub mod execute;
pub mod merge;
pub mod record;
pub mod shard;

use crate::spec::{RunSpec, SpecFile};
use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::Path;

/// What a run must come out as for the campaign to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Safe (and, where SLOs are declared, within them).
    Valid,
    /// A planted bug that must be found.
    Invalid,
    /// Anything but an error: the run is for its figures.
    Any,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
            Expect::Any => "any",
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    runs: Vec<toml::Table>,
}

/// One run of a campaign, resolved.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Its name in the store (`<store>/<name>/<stamp>`).
    pub name: String,
    pub label: String,
    pub expect: Expect,
    /// The settings it runs with (what `fissure run --spec` gets).
    pub settings: SpecFile,
    pub spec: RunSpec,
}

/// A campaign ready to run.
#[derive(Debug)]
pub struct Campaign {
    pub name: String,
    pub runs: Vec<PlannedRun>,
}

/// The most runs a campaign may expand to: more would take months to run, and a few lines of
/// TOML (long lists multiplied, `repeats = 1000`) must not plan millions of runs in memory.
pub const MAX_RUNS: usize = 10_000;

/// Keys of a `[[runs]]` entry that make the matrix rather than set a run setting.
const MATRIX_KEYS: &[&str] = &[
    "label",
    "targets",
    "workloads",
    "fault-sets",
    "seeds",
    "repeats",
    "expect",
];

fn strings(value: &toml::Value, key: &str) -> anyhow::Result<Vec<String>> {
    let items = value
        .as_array()
        .with_context(|| format!("{key} must be a list"))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .with_context(|| format!("{key} must list strings, got {v}"))
        })
        .collect()
}

/// A name the store accepts: letters, digits, '-', '_', '.'.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl Campaign {
    /// Reads and expands a campaign file; `store` (if given) overrides every run's store.
    pub fn load(path: &Path, store: Option<&Path>) -> anyhow::Result<Campaign> {
        Campaign::load_with(path, store, None)
    }

    /// As [`Campaign::load`]; with a `seed_salt`, runs whose seed the file leaves open get one
    /// derived from the salt and their place in the matrix instead of a random one, so that
    /// every shard of a sharded campaign expands it alike.
    pub fn load_with(
        path: &Path,
        store: Option<&Path>,
        seed_salt: Option<&str>,
    ) -> anyhow::Result<Campaign> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read campaign {}", path.display()))?;
        Campaign::parse_with(&text, store, seed_salt)
            .with_context(|| format!("campaign {}", path.display()))
    }

    pub fn parse(text: &str, store: Option<&Path>) -> anyhow::Result<Campaign> {
        Campaign::parse_with(text, store, None)
    }

    pub fn parse_with(
        text: &str,
        store: Option<&Path>,
        seed_salt: Option<&str>,
    ) -> anyhow::Result<Campaign> {
        let file: CampaignFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        if file.name.is_empty() || slug(&file.name) != file.name {
            bail!(
                "name: {:?} must be letters, digits, '-', '_' or '.'",
                file.name
            );
        }
        let defaults: SpecFile = toml::Value::Table(file.defaults)
            .try_into()
            .map_err(|e| anyhow::anyhow!("[defaults]: {e}"))?;
        if file.runs.is_empty() {
            bail!("no [[runs]]: a campaign needs at least one");
        }
        let mut runs = Vec::new();
        for (i, entry) in file.runs.into_iter().enumerate() {
            let at = format!("[[runs]] #{}", i + 1);
            expand(&file.name, i, entry, &defaults, store, seed_salt, &mut runs)
                .with_context(|| at.clone())?;
        }
        if runs.is_empty() {
            bail!("the [[runs]] expand to no run (an empty targets, seeds or fault-sets list?)");
        }
        let mut seen = std::collections::BTreeSet::new();
        for run in &runs {
            if !seen.insert(run.name.clone()) {
                bail!(
                    "two runs are named {}: give their [[runs]] entries different labels",
                    run.name
                );
            }
        }
        Ok(Campaign {
            name: file.name,
            runs,
        })
    }
}

fn expand(
    campaign: &str,
    index: usize,
    mut entry: toml::Table,
    defaults: &SpecFile,
    store: Option<&Path>,
    seed_salt: Option<&str>,
    runs: &mut Vec<PlannedRun>,
) -> anyhow::Result<()> {
    let mut matrix = toml::Table::new();
    for key in MATRIX_KEYS {
        if let Some(value) = entry.remove(*key) {
            matrix.insert(key.to_string(), value);
        }
    }
    let overrides: SpecFile = toml::Value::Table(entry)
        .try_into()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = defaults.clone().overridden_by(overrides);
    let expect: Expect = match matrix.get("expect") {
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|_| anyhow::anyhow!("expect: one of valid, invalid, any; got {v}"))?,
        None => Expect::Valid,
    };
    let targets = match matrix.get("targets") {
        Some(v) => strings(v, "targets")?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let workloads = match matrix.get("workloads") {
        Some(v) => strings(v, "workloads")?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let fault_sets: Vec<Option<Vec<String>>> = match matrix.get("fault-sets") {
        Some(v) => {
            let sets = v.as_array().context("fault-sets must be a list of lists")?;
            sets.iter()
                .map(|set| strings(set, "fault-sets").map(Some))
                .collect::<anyhow::Result<_>>()?
        }
        None => vec![None],
    };
    let seeds: Vec<Option<u64>> = match matrix.get("seeds") {
        Some(v) => (v.as_array().context("seeds must be a list")?.iter())
            .map(|s| {
                s.as_integer()
                    .filter(|n| *n >= 0)
                    .map(|n| Some(n as u64))
                    .with_context(|| format!("seeds must be whole numbers, got {s}"))
            })
            .collect::<anyhow::Result<_>>()?,
        None => vec![base.seed],
    };
    let repeats = match matrix.get("repeats") {
        Some(v) => v
            .as_integer()
            .filter(|n| (1..=1000).contains(n))
            .context("repeats must be a whole number from 1 to 1000")? as usize,
        None => 1,
    };
    let label = match matrix.get("label") {
        Some(v) => v.as_str().context("label must be a string")?.to_string(),
        None => base
            .bug
            .clone()
            .unwrap_or_else(|| format!("runs{}", index + 1)),
    };
    let count = [
        targets.len(),
        workloads.len(),
        fault_sets.len(),
        seeds.len(),
        repeats,
    ]
    .into_iter()
    .try_fold(1usize, usize::checked_mul)
    .filter(|count| runs.len().saturating_add(*count) <= MAX_RUNS);
    if count.is_none() {
        bail!(
            "targets, workloads, fault-sets, seeds and repeats multiply to more runs than a \
             campaign may have ({MAX_RUNS}, counting the entries before)"
        );
    }
    for target in &targets {
        for workload in &workloads {
            for faults in &fault_sets {
                for seed in &seeds {
                    for repeat in 1..=repeats {
                        let mut settings = base.clone();
                        settings.target = target.clone().or(settings.target);
                        settings.workload = workload.clone().or(settings.workload);
                        settings.nemesis = faults.clone().or(settings.nemesis);
                        settings.seed = seed.or(settings.seed);
                        if let (None, Some(salt)) = (settings.seed, seed_salt) {
                            let place = format!(
                                "{index}/{:?}/{:?}/{:?}/{repeat}",
                                settings.target, settings.workload, settings.nemesis
                            );
                            settings.seed = Some(shard::derived_seed(salt, &[campaign, &place]));
                        }
                        if let Some(store) = store {
                            settings.store = Some(store.to_path_buf());
                        }
                        let mut spec = settings.resolve()?;
                        let mut name = format!(
                            "{campaign}-{label}-{}-{}-{}-s{}",
                            spec.def.name,
                            spec.workload,
                            if spec.nemesis.is_empty() {
                                "none".to_string()
                            } else {
                                spec.nemesis
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("+")
                            },
                            spec.seed
                        );
                        if repeats > 1 {
                            name.push_str(&format!("-r{repeat}"));
                        }
                        let name = slug(&name);
                        settings.name = Some(name.clone());
                        // The seed is fixed now (a random one is drawn once), so a rerun of
                        // the campaign's run is the same run.
                        settings.seed = Some(spec.seed);
                        spec.name = name.clone();
                        runs.push(PlannedRun {
                            name,
                            label: label.clone(),
                            expect,
                            settings,
                            spec,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = r#"
name = "smoke"
[defaults]
nodes = 3
time-limit = "8s"
nemesis-interval = "1s"
[[runs]]
targets = ["raft-kv", "quorum"]
fault-sets = [["partition"], ["partition", "kill"]]
seeds = [1, 2]
[[runs]]
targets = ["raft-kv"]
bug = "stale-read"
fault-sets = [["partition"]]
seeds = [1]
repeats = 2
expect = "invalid"
"#;

    #[test]
    fn a_matrix_multiplies_and_entries_override_defaults() {
        let campaign = Campaign::parse(SMOKE, None).unwrap();
        assert_eq!(campaign.runs.len(), 2 * 2 * 2 + 2);
        let first = &campaign.runs[0];
        assert_eq!(first.name, "smoke-runs1-raft-kv-register-partition-s1");
        assert_eq!(first.expect, Expect::Valid);
        assert_eq!(first.spec.nodes, 3);
        let bug = campaign.runs.last().unwrap();
        assert_eq!(bug.expect, Expect::Invalid);
        assert_eq!(bug.spec.bug.as_deref(), Some("stale-read"));
        assert!(bug.name.starts_with("smoke-stale-read-raft-kv"));
        assert!(bug.name.ends_with("-r2"));
        assert!(campaign.runs.iter().all(|r| r.settings.seed.is_some()));
    }

    #[test]
    fn mistakes_name_the_entry_and_the_setting() {
        let typo = "name = \"x\"\n[[runs]]\ntargets = [\"raft-kv\"]\nnodez = 3\n";
        let error = format!("{:#}", Campaign::parse(typo, None).unwrap_err());
        assert!(
            error.contains("[[runs]] #1") && error.contains("nodez"),
            "{error}"
        );
        let bad_bug = "name = \"x\"\n[[runs]]\ntargets = [\"quorum\"]\nbug = \"stale-read\"\n";
        let error = format!("{:#}", Campaign::parse(bad_bug, None).unwrap_err());
        assert!(error.contains("bug"), "{error}");
        let expect = "name = \"x\"\n[[runs]]\nexpect = \"maybe\"\n";
        let error = format!("{:#}", Campaign::parse(expect, None).unwrap_err());
        assert!(error.contains("expect"), "{error}");
        let twice =
            "name = \"x\"\n[[runs]]\nseeds = [1]\n[[runs]]\nseeds = [1]\nlabel = \"runs1\"\n";
        let error = format!("{:#}", Campaign::parse(twice, None).unwrap_err());
        assert!(error.contains("two runs are named"), "{error}");
        assert!(Campaign::parse("name = \"x\"\n", None).is_err());
        let huge = format!(
            "name = \"x\"\n[[runs]]\nseeds = [{}]\nrepeats = 1000\n",
            vec!["1"; 1000].join(",")
        );
        let error = format!("{:#}", Campaign::parse(&huge, None).unwrap_err());
        assert!(
            error.contains("more runs than a campaign may have"),
            "{error}"
        );
        let empty = "name = \"x\"\n[[runs]]\nseeds = []\n";
        let error = format!("{:#}", Campaign::parse(empty, None).unwrap_err());
        assert!(error.contains("no run"), "{error}");
    }
}
