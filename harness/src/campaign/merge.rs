//! `fissure merge`: the stores of a sharded campaign's shards back into one store, with one
//! campaign record, one JUnit file and the index rebuilt, exiting as the whole campaign would.
//!
//! Nothing is copied until every check has passed: the stores hold the same campaign, each
//! shard once, none missing, and no file of one would overwrite a different file of another.

use super::record::{self, CampaignRecord};
use super::shard::Shard;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One input store and the campaign record found in it.
struct ShardStore {
    store: PathBuf,
    record: CampaignRecord,
}

/// Merges `stores` into `into`; returns the campaign's exit code.
pub fn merge(stores: &[PathBuf], into: &Path, junit: Option<&Path>) -> anyhow::Result<u8> {
    if stores.is_empty() {
        bail!("name the shards' stores to merge: fissure merge STORE... --into STORE");
    }
    let shards = stores
        .iter()
        .map(|store| {
            Ok(ShardStore {
                record: newest_record(store)?,
                store: store.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_shards(&shards)?;
    let into_real = std::fs::canonicalize(into).ok();
    let mut copies = Vec::new();
    for shard in &shards {
        if into_real.is_some() && std::fs::canonicalize(&shard.store).ok() == into_real {
            continue;
        }
        plan_copies(&shard.store, into, Path::new(""), &mut copies)?;
    }
    let conflicts: Vec<String> = copies
        .iter()
        .filter_map(|c| c.conflict().map(|why| format!("{}: {why}", c.to.display())))
        .collect();
    if !conflicts.is_empty() {
        bail!(
            "merging would overwrite files that differ; nothing was copied:\n  {}",
            conflicts.join("\n  ")
        );
    }
    for copy in &copies {
        copy.apply()?;
    }

    let first = &shards[0].record;
    let mut by_name: BTreeMap<&str, &record::RunRecord> = BTreeMap::new();
    for shard in &shards {
        for run in &shard.record.runs {
            by_name.insert(&run.name, run);
        }
    }
    let merged = CampaignRecord {
        campaign: first.campaign.clone(),
        shard: Shard::WHOLE,
        planned: first.planned.clone(),
        runs: first
            .planned
            .iter()
            .filter_map(|name| by_name.get(name.as_str()).map(|r| (*r).clone()))
            .collect(),
        not_run: first
            .planned
            .iter()
            .filter(|name| !by_name.contains_key(name.as_str()))
            .cloned()
            .collect(),
        started: shards
            .iter()
            .map(|s| s.record.started.clone())
            .min()
            .unwrap_or_default(),
        // The shards ran side by side: the campaign took as long as its longest shard.
        seconds: shards.iter().map(|s| s.record.seconds).fold(0.0, f64::max),
    };
    let stamp = merged.started.replace([':', '-'], "");
    let work = into
        .join("campaigns")
        .join(format!("{}-{stamp}-merged", merged.campaign));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    merged.write(&work)?;
    let summary = merged.summary();
    print!("{summary}");
    std::fs::write(work.join("summary.txt"), &summary)?;
    let junit_text = merged.junit(into);
    std::fs::write(work.join("junit.xml"), &junit_text)?;
    if let Some(path) = junit {
        std::fs::write(path, &junit_text)
            .with_context(|| format!("cannot write the JUnit file {}", path.display()))?;
        println!("JUnit: {}", path.display());
    }
    reports::index::write(into).context("rebuilding the merged store's index")?;
    println!(
        "merged {} shards into {} · index: {}",
        shards.len(),
        into.display(),
        into.join("index.html").display()
    );
    Ok(merged.exit_code(false))
}

/// The store's newest campaign record (a store may hold older campaigns too).
fn newest_record(store: &Path) -> anyhow::Result<CampaignRecord> {
    if !store.is_dir() {
        bail!(
            "{}: no such store (is the path right? did the shard's job upload it?)",
            store.display()
        );
    }
    let campaigns = store.join("campaigns");
    let mut found: Vec<CampaignRecord> = std::fs::read_dir(&campaigns)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(record::FILE).is_file())
        .map(|e| CampaignRecord::read(&e.path()))
        .collect::<anyhow::Result<_>>()?;
    found.sort_by(|a, b| a.started.cmp(&b.started));
    found.pop().with_context(|| {
        format!(
            "{}: no campaign record ({}/*/{}); merge stores that `fissure campaign` wrote",
            store.display(),
            campaigns.display(),
            record::FILE
        )
    })
}

/// Same campaign, same expansion, same number of shards, each shard once, none missing.
fn check_shards(shards: &[ShardStore]) -> anyhow::Result<()> {
    let first = &shards[0];
    for other in &shards[1..] {
        let (a, b) = (&first.record, &other.record);
        if a.campaign != b.campaign {
            bail!(
                "{} holds campaign {:?} but {} holds {:?}: merge the shards of one campaign",
                first.store.display(),
                a.campaign,
                other.store.display(),
                b.campaign
            );
        }
        if a.planned != b.planned || a.shard.count != b.shard.count {
            bail!(
                "{} and {} expanded campaign {:?} differently ({} vs {} runs, {} vs {} shards): \
                 run every shard from the same campaign file with the same --seed-salt",
                first.store.display(),
                other.store.display(),
                a.campaign,
                a.planned.len(),
                b.planned.len(),
                a.shard.count,
                b.shard.count
            );
        }
    }
    let count = first.record.shard.count;
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for shard in shards {
        let index = shard.record.shard.index;
        if let Some(before) = seen.insert(index, &shard.store) {
            bail!(
                "shard {index}/{count} is in both {} and {}: give each shard's store once",
                before.display(),
                shard.store.display()
            );
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard{} {} of campaign {:?} missing: pass every shard's store",
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join(", "),
            first.record.campaign
        );
    }
    Ok(())
}

/// A file (or symlink) to bring into the merged store.
struct Copy {
    from: PathBuf,
    to: PathBuf,
    link: Option<PathBuf>,
}

impl Copy {
    /// Why copying would lose something, if it would.
    fn conflict(&self) -> Option<String> {
        let existing = std::fs::symlink_metadata(&self.to).ok()?;
        match &self.link {
            // `latest` links are rewritten: they point at the newest run, whichever shard has it.
            Some(_) => None,
            None if existing.is_file() => {
                let same = std::fs::read(&self.from).ok() == std::fs::read(&self.to).ok();
                (!same).then(|| format!("differs from {}", self.from.display()))
            }
            None => Some("exists and is not a file".into()),
        }
    }

    fn apply(&self) -> anyhow::Result<()> {
        if let Some(parent) = self.to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        match &self.link {
            Some(target) => {
                let _ = std::fs::remove_file(&self.to);
                std::os::unix::fs::symlink(target, &self.to)
                    .with_context(|| format!("cannot link {}", self.to.display()))
            }
            None if self.to.exists() => Ok(()),
            None => std::fs::copy(&self.from, &self.to)
                .map(drop)
                .with_context(|| format!("cannot copy {}", self.from.display())),
        }
    }
}

/// Every file under `root/relative`, except the index (rebuilt after the merge).
fn plan_copies(
    root: &Path,
    into: &Path,
    relative: &Path,
    out: &mut Vec<Copy>,
) -> anyhow::Result<()> {
    let dir = root.join(relative);
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let entry = entry?;
        let name = relative.join(entry.file_name());
        if name == Path::new("index.html") {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            out.push(Copy {
                from: entry.path(),
                to: into.join(&name),
                link: Some(std::fs::read_link(entry.path())?),
            });
        } else if kind.is_dir() {
            plan_copies(root, into, &name, out)?;
        } else {
            out.push(Copy {
                from: entry.path(),
                to: into.join(&name),
                link: None,
            });
        }
    }
    Ok(())
}
