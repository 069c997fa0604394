use super::*;

fn toml(text: &str) -> Result<SpecFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_a_raft_register_test_under_partitions_and_kills() {
    let spec = SpecFile::default().resolve().unwrap();
    assert_eq!(spec.target, "raft-kv");
    assert_eq!(spec.workload.to_string(), "register");
    let faults: Vec<String> = spec.nemesis.iter().map(|f| f.to_string()).collect();
    assert_eq!(faults, ["partition", "kill"]);
    assert_eq!(spec.time_limit, Duration::from_secs(30));
    assert_eq!(spec.nodes, 5);
    assert_eq!(spec.name, "raft-kv-register");
}

#[test]
fn a_target_of_one_node_defaults_to_one_node() {
    let spec = SpecFile {
        target: Some("postgres".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(spec.nodes, 1);
    assert_eq!(spec.workload.to_string(), "append");
    // Partitions need two nodes; the default faults keep what one server can take.
    let faults: Vec<String> = spec.nemesis.iter().map(|f| f.to_string()).collect();
    assert_eq!(faults, ["kill"]);
    let err = SpecFile {
        target: Some("postgres".into()),
        nodes: Some(3),
        ..Default::default()
    }
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(err.contains("exactly 1 node"), "{err}");
}

#[test]
fn toml_is_read_and_flags_override_it() {
    let file = toml(
        r#"
        target = "quorum"
        nodes = 3
        time-limit = "2m"
        nemesis = "partition, pause"
        nemesis-interval = "500ms"
        seed = 7
        "#,
    )
    .unwrap();
    let flags = SpecFile {
        nodes: Some(5),
        ..Default::default()
    };
    let spec = file.overridden_by(flags).resolve().unwrap();
    assert_eq!(spec.target, "quorum");
    assert_eq!(spec.nodes, 5);
    assert_eq!(spec.time_limit, Duration::from_secs(120));
    assert_eq!(spec.nemesis_interval, Duration::from_millis(500));
    assert_eq!(spec.nemesis.len(), 2);
    assert_eq!(spec.seed, 7);
}

#[test]
fn bad_values_name_their_setting() {
    let err = toml("time-limit = \"thirty\"").unwrap_err();
    assert!(
        err.contains("time-limit") && err.contains("duration"),
        "{err}"
    );
    let err = toml("nodez = 3").unwrap_err();
    assert!(err.contains("nodez"), "{err}");
    let bad = |file: SpecFile, wanted: &str| {
        let err = format!("{:#}", file.resolve().unwrap_err());
        assert!(err.contains(wanted), "{err} lacks {wanted}");
    };
    bad(
        SpecFile {
            nemesis: Some(vec!["partition".into(), "meteor".into()]),
            ..Default::default()
        },
        "nemesis: \"meteor\"",
    );
    bad(
        SpecFile {
            bug: Some("sloppy-quorum".into()),
            ..Default::default()
        },
        "bug:",
    );
    bad(
        SpecFile {
            rate: Some(-1.0),
            ..Default::default()
        },
        "rate:",
    );
    bad(
        SpecFile {
            target: Some("twopc".into()),
            nodes: Some(1),
            ..Default::default()
        },
        "nodes:",
    );
    bad(
        SpecFile {
            name: Some("../escape".into()),
            ..Default::default()
        },
        "name:",
    );
}

#[test]
fn a_stored_spec_resolves_to_the_same_run() {
    let spec = SpecFile {
        seed: Some(42),
        bug: Some("stale-read".into()),
        nemesis: Some(vec!["clock".into()]),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = serde_json::json!({ "spec": spec.to_file() });
    std::fs::write(dir.path().join("test.json"), stored.to_string()).unwrap();
    let again = SpecFile::load(dir.path()).unwrap().resolve().unwrap();
    assert_eq!(again, spec);
}

#[test]
fn the_shipped_example_spec_resolves() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/quick.toml"));
    let spec = SpecFile::load(path).unwrap().resolve().unwrap();
    assert_eq!(spec.nodes, 3);
    assert_eq!(spec.nemesis.len(), 6);
}

#[test]
fn target_options_come_from_a_table_the_set_list_and_the_flags() {
    let file = SpecFile::from_toml(
        "target = \"etcd\"\nbackend = \"docker\"\nnemesis = [\"kill\"]\n[options]\nreads = \"serializable\"\n",
    )
    .unwrap();
    let spec = file.clone().resolve().unwrap();
    assert_eq!(spec.options["reads"], "serializable");
    let flags = SpecFile {
        set: Some(vec!["reads=linearizable".into()]),
        ..SpecFile::default()
    };
    let spec = file.overridden_by(flags).resolve().unwrap();
    assert_eq!(spec.options["reads"], "linearizable");
    // Stored with every option spelled out, so a rerun is the same run.
    assert_eq!(spec.to_file().set.unwrap(), vec!["reads=linearizable"]);
}

#[test]
fn another_target_drops_the_stored_options_and_entries_merge_key_by_key() {
    let stored =
        SpecFile::from_toml("target = \"etcd\"\nset = [\"reads=serializable\"]\n").unwrap();
    let other = SpecFile {
        target: Some("raft-kv".into()),
        ..SpecFile::default()
    };
    let spec = stored.overridden_by(other).resolve().unwrap();
    assert!(!spec.options.contains_key("reads"));
    // A campaign entry's table adds to the defaults' instead of replacing it.
    let defaults =
        SpecFile::from_toml("target = \"raft-kv\"\n[options]\nheartbeat-ms = \"40\"\n").unwrap();
    let entry = SpecFile::from_toml("[options]\nelection-timeout-ms = \"400\"\n").unwrap();
    let spec = defaults.overridden_by(entry).resolve().unwrap();
    assert_eq!(spec.options["heartbeat-ms"], "40");
    assert_eq!(spec.options["election-timeout-ms"], "400");
}

#[test]
fn the_consistency_model_is_the_specs_else_the_targets_else_strict_serializable() {
    use checkers::txn::ConsistencyModel;
    let append = SpecFile {
        workload: Some("append".into()),
        ..Default::default()
    };
    let spec = append.clone().resolve().unwrap();
    assert_eq!(spec.consistency_model, ConsistencyModel::StrictSerializable);
    assert_eq!(
        spec.workload_options().consistency_model,
        ConsistencyModel::StrictSerializable
    );
    let file = toml(
        r#"workload = "wr"
consistency-model = "snapshot-isolation""#,
    )
    .unwrap();
    let spec = file.resolve().unwrap();
    assert_eq!(spec.consistency_model, ConsistencyModel::SnapshotIsolation);
    let workload = spec.build_workload().unwrap();
    assert_eq!(
        workload.checkers,
        vec![workloads::workload::CheckerSpec::Isolation {
            workload: checkers::txn::TxnWorkload::RwRegister,
            consistency_model: ConsistencyModel::SnapshotIsolation
        }]
    );
    // Stored and read back, the run is held to the same model.
    let again = spec.to_file().resolve().unwrap();
    assert_eq!(again.consistency_model, ConsistencyModel::SnapshotIsolation);
    let err = SpecFile {
        consistency_model: Some("acid".into()),
        ..append
    }
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("consistency-model: no consistency model \"acid\""),
        "{err}"
    );
}
