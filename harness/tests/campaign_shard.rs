//! `fissure campaign --shard K/N` and `fissure merge`: three shards merged hold the same runs,
//! expectations and verdicts as the campaign run whole, with one index and one JUnit file; a
//! shard missing, given twice, or from another campaign is an error that names it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn fissure(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("fissure runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Four short runs on the local backend; seeds are left open, so shards must derive them alike.
const CAMPAIGN: &str = r#"
name = "shards"
[defaults]
nodes = 3
time-limit = "3s"
nemesis-interval = "1s"
rate = 60
[[runs]]
label = "correct"
targets = ["raft-kv", "quorum"]
fault-sets = [["partition"]]
[[runs]]
label = "correct-kill"
targets = ["raft-kv"]
fault-sets = [["kill"]]
seeds = [1, 2]
"#;

/// `(run name, expect, verdict)` of every run in the store's whole-campaign record, by name.
fn outcomes(store: &Path) -> Vec<(String, String, String)> {
    let campaigns = store.join("campaigns");
    let records: Vec<_> = std::fs::read_dir(&campaigns)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("campaign.json"))
        .filter(|p| p.is_file())
        .collect();
    // The whole campaign's record: the merged one, not the shards' copied beside it.
    let record: serde_json::Value = records
        .iter()
        .map(|p| {
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()
        })
        .find(|r| r["shard"]["count"] == 1)
        .expect("a whole campaign's record");
    let mut out: Vec<_> = record["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["expect"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn three_shards_merge_into_the_campaign_run_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("c.toml"), CAMPAIGN).unwrap();

    let whole = fissure(
        &[
            "campaign",
            "c.toml",
            "--store",
            "whole",
            "--shard",
            "1/1",
            "--seed-salt",
            "night-1",
        ],
        root,
    );
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));

    let mut listed = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let store = format!("shard{k}");
        let list = fissure(
            &[
                "campaign",
                "c.toml",
                "--shard",
                &shard,
                "--seed-salt",
                "night-1",
                "--list",
            ],
            root,
        );
        assert_eq!(list.status.code(), Some(0), "{}", text(&list));
        listed.extend(
            String::from_utf8_lossy(&list.stdout)
                .lines()
                .map(|l| l.split_whitespace().next().unwrap().to_string()),
        );
        let out = fissure(
            &[
                "campaign",
                "c.toml",
                "--shard",
                &shard,
                "--seed-salt",
                "night-1",
                "--store",
                &store,
                "--junit",
                &format!("{store}.xml"),
            ],
            root,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("(shard {k}/3)")));
    }
    listed.sort();
    assert_eq!(
        listed.len(),
        4,
        "every run in exactly one shard: {listed:?}"
    );
    listed.dedup();
    assert_eq!(listed.len(), 4, "{listed:?}");

    // The shards are not complete without each other.
    let out = fissure(&["merge", "shard1", "shard3", "--into", "merged"], root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("shard 2/3 of campaign \"shards\" missing")
            || text(&out).contains("2/3"),
        "{}",
        text(&out)
    );
    let out = fissure(
        &[
            "merge", "shard1", "shard2", "shard2", "shard3", "--into", "merged",
        ],
        root,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("shard 2/3 is in both"),
        "{}",
        text(&out)
    );
    let out = fissure(&["merge", "shard1", "whole", "--into", "merged"], root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("expanded campaign"), "{}", text(&out));
    let out = fissure(&["merge", "shard1", "nowhere", "--into", "merged"], root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("nowhere: no such store"),
        "{}",
        text(&out)
    );
    assert!(
        !root.join("merged").exists(),
        "nothing is written before the checks pass"
    );

    let out = fissure(
        &[
            "merge", "shard1", "shard2", "shard3", "--into", "merged", "--junit", "all.xml",
        ],
        root,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("campaign shards: 4 runs, 4 as expected"));
    let merged = outcomes(&root.join("merged"));
    assert_eq!(
        merged,
        outcomes(&root.join("whole")),
        "same runs and verdicts as run whole"
    );
    let junit = std::fs::read_to_string(root.join("all.xml")).unwrap();
    assert!(junit.contains("tests=\"4\" failures=\"0\""), "{junit}");
    let index = std::fs::read_to_string(root.join("merged/index.html")).unwrap();
    for (name, _, _) in &merged {
        assert!(index.contains(name.as_str()), "the index lists {name}");
        // Every run's files came along.
        let latest = root.join("merged").join(name).join("latest");
        assert!(latest.join("results.json").is_file(), "{name}");
        assert!(latest.join("report.html").is_file(), "{name}");
    }
}
