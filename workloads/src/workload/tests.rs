use super::*;
use crate::generator::sim::{invocations, simulate, SimConfig};
use crate::generator::{phases, time_limit, Outcome};
use std::collections::BTreeSet;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// `main` for a simulated second, then the final reads; the invocations as (process, op).
fn run(w: Workload, concurrency: usize) -> Vec<(u64, crate::generator::OpTemplate)> {
    run_seeded(w, concurrency, 3)
}

fn run_seeded(
    w: Workload,
    concurrency: usize,
    seed: u64,
) -> Vec<(u64, crate::generator::OpTemplate)> {
    let mut plan = vec![time_limit(Duration::from_secs(1), w.main).boxed()];
    plan.extend(w.final_reads);
    let mut g = phases(plan);
    let cfg = SimConfig {
        concurrency,
        seed,
        max_steps: 1_000_000,
    };
    let events = simulate(&mut g, &cfg, |_, _| (2 * MS, Outcome::Ok)).unwrap();
    invocations(&events)
        .map(|e| (e.process, e.op.clone()))
        .collect()
}

#[test]
fn register_ops_are_keyed_and_cas_only_where_the_target_has_it() {
    for (target, has_cas) in [("raft-kv", true), ("echo", true), ("quorum", false)] {
        let w = build(WorkloadKind::Register, target, &WorkloadOptions::default()).unwrap();
        let model = if has_cas { "cas-register" } else { "register" };
        assert_eq!(
            w.checkers,
            vec![CheckerSpec::Linearizable {
                model: model.into(),
                init: Value::Null
            }]
        );
        assert!(w.final_reads.is_none());
        let ops = run(w, 4);
        let mut fs = BTreeSet::new();
        let mut per_key = std::collections::BTreeMap::<u64, u64>::new();
        for (_, op) in &ops {
            let key = op
                .key
                .as_ref()
                .and_then(Value::as_u64)
                .expect("integer key");
            *per_key.entry(key).or_default() += 1;
            match op.f.as_str() {
                "read" => assert!(op.value.is_null()),
                "write" => assert!(op.value.as_u64().unwrap() < 5),
                "cas" => assert_eq!(op.value.as_array().unwrap().len(), 2),
                other => panic!("unexpected f {other}"),
            }
            fs.insert(op.f.clone());
        }
        assert_eq!(fs.contains("cas"), has_cas, "{target}: {fs:?}");
        assert!(fs.contains("read") && fs.contains("write"));
        assert!(per_key.values().all(|&n| n <= 200));
        assert!(per_key.len() > 5, "keys rotate: {per_key:?}");
    }
}

#[test]
fn bank_transfers_between_distinct_accounts_then_reads_once_per_process() {
    let options = WorkloadOptions {
        max_transfer: 3,
        ..WorkloadOptions::default()
    };
    let w = build(WorkloadKind::Bank, "twopc", &options).unwrap();
    assert_eq!(
        w.checkers,
        vec![CheckerSpec::Bank {
            accounts: options.accounts.clone(),
            initial_balance: 100
        }]
    );
    let ops = run(w, 3);
    let (main, last) = ops.split_at(ops.len() - 3);
    let mut amounts = BTreeSet::new();
    let mut reads = 0;
    for (_, op) in main {
        assert!(op.key.is_none());
        match op.f.as_str() {
            "transfer" => {
                let t = crate::bank::Transfer::parse(&op.value).unwrap();
                assert_ne!(t.from, t.to);
                assert!(options.accounts.contains(&t.from));
                assert!(options.accounts.contains(&t.to));
                amounts.insert(t.amount);
            }
            "read" => reads += 1,
            other => panic!("unexpected f {other}"),
        }
    }
    assert_eq!(amounts, BTreeSet::from([1, 2, 3]));
    assert!(
        reads > 0 && reads * 2 < main.len(),
        "{reads} of {}",
        main.len()
    );
    let procs: BTreeSet<u64> = last.iter().map(|(p, _)| *p).collect();
    assert_eq!(procs, BTreeSet::from([0, 1, 2]));
    assert!(last.iter().all(|(_, op)| *op == bank_read()));
}

#[test]
fn set_adds_unique_integers_then_reads_once_per_process() {
    let w = build(WorkloadKind::Set, "raft-kv", &WorkloadOptions::default()).unwrap();
    assert_eq!(w.checkers, vec![CheckerSpec::Set]);
    let ops = run(w, 2);
    let (main, last) = ops.split_at(ops.len() - 2);
    let adds: Vec<u64> = main
        .iter()
        .map(|(_, op)| {
            assert_eq!(op.f, "add");
            op.value.as_u64().unwrap()
        })
        .collect();
    assert_eq!(adds, (0..adds.len() as u64).collect::<Vec<_>>());
    assert!(adds.len() > 100);
    assert!(last.iter().all(|(_, op)| *op == set_read()));
    assert_ne!(last[0].0, last[1].0);
}

#[test]
fn counter_adds_small_increments_and_reads_then_reads_once_per_process() {
    let w = build(
        WorkloadKind::Counter,
        "raft-kv",
        &WorkloadOptions::default(),
    )
    .unwrap();
    assert_eq!(w.checkers, vec![CheckerSpec::Counter]);
    let ops = run(w, 3);
    let (main, last) = ops.split_at(ops.len() - 3);
    let mut increments = BTreeSet::new();
    let (mut adds, mut reads) = (0usize, 0usize);
    for (_, op) in main {
        assert!(op.key.is_none(), "one counter: {op:?}");
        match op.f.as_str() {
            "add" => {
                adds += 1;
                increments.insert(op.value.as_i64().expect("an integer increment"));
            }
            "read" => {
                reads += 1;
                assert_eq!(*op, counter_read());
            }
            other => panic!("unexpected f {other}"),
        }
    }
    assert_eq!(
        increments,
        (1..=counter::MAX_INCREMENT).collect::<BTreeSet<_>>()
    );
    assert!(adds + reads > 100, "{adds} adds, {reads} reads");
    // Three adds to one read, give or take the draw.
    let share = reads as f64 / (adds + reads) as f64;
    assert!((0.15..0.35).contains(&share), "{reads} of {}", adds + reads);
    let procs: BTreeSet<u64> = last.iter().map(|(p, _)| *p).collect();
    assert_eq!(procs, BTreeSet::from([0, 1, 2]));
    assert!(last.iter().all(|(_, op)| *op == counter_read()));
}

#[test]
fn transactional_workloads_are_checked_for_isolation_against_the_model_asked() {
    for (kind, workload, write) in [
        (WorkloadKind::Append, TxnWorkload::ListAppend, "append"),
        (WorkloadKind::Wr, TxnWorkload::RwRegister, "w"),
    ] {
        let options = WorkloadOptions {
            consistency_model: ConsistencyModel::SnapshotIsolation,
            ..WorkloadOptions::default()
        };
        let w = build(kind, "raft-kv", &options).unwrap();
        assert_eq!(
            w.checkers,
            vec![CheckerSpec::Isolation {
                workload,
                consistency_model: ConsistencyModel::SnapshotIsolation
            }]
        );
        let ops = run(w, 3);
        assert!(ops.iter().all(|(_, op)| op.f == "txn"));
        let writes = ops
            .iter()
            .flat_map(|(_, op)| op.value.as_array().unwrap().clone())
            .filter(|m| m[0] == write)
            .count();
        assert!(writes > 100, "{writes} writes");
        // The last operations are the final reads: reads only.
        let (_, last) = ops.last().unwrap();
        assert!(last.value.as_array().unwrap().iter().all(|m| m[0] == "r"));
    }
    // Without a model, the spec says strict serializable.
    let spec: CheckerSpec = serde_json::from_value(
        serde_json::json!({"checker": "isolation", "workload": "rw-register"}),
    )
    .unwrap();
    assert_eq!(
        spec,
        CheckerSpec::Isolation {
            workload: TxnWorkload::RwRegister,
            consistency_model: ConsistencyModel::StrictSerializable
        }
    );
    let bad = WorkloadOptions {
        txn_min_ops: 3,
        txn_max_ops: 2,
        ..WorkloadOptions::default()
    };
    let err = build(WorkloadKind::Wr, "echo", &bad).err().unwrap();
    assert!(err.contains("wr workload: txn_max_ops"), "{err}");
    assert!(build(WorkloadKind::Register, "echo", &bad).is_ok());
}

#[test]
fn counter_ops_are_fixed_by_the_seed() {
    let ops = |seed| {
        let w = build(
            WorkloadKind::Counter,
            "raft-kv",
            &WorkloadOptions::default(),
        )
        .unwrap();
        run_seeded(w, 4, seed)
    };
    assert_eq!(ops(7), ops(7));
    assert_ne!(ops(7), ops(8));
}

#[test]
fn unsupported_pairs_say_why_and_name_a_target_that_can() {
    for (kind, target, alternative) in [
        (WorkloadKind::Bank, "quorum", "twopc"),
        (WorkloadKind::Set, "quorum", "raft-kv"),
        (WorkloadKind::Set, "twopc", "raft-kv"),
        (WorkloadKind::Counter, "quorum", "raft-kv"),
        (WorkloadKind::Counter, "twopc", "raft-kv"),
        (WorkloadKind::Register, "twopc", "raft-kv"),
        (WorkloadKind::Append, "quorum", "raft-kv"),
        (WorkloadKind::Wr, "twopc", "raft-kv"),
    ] {
        let err = supports(kind, target).unwrap_err();
        assert!(err.contains(target) && err.contains(alternative), "{err}");
        assert_eq!(
            build(kind, target, &WorkloadOptions::default()).err(),
            Some(err)
        );
    }
    for kind in WorkloadKind::ALL {
        assert!(supports(kind, "raft-kv").is_ok() && supports(kind, "echo").is_ok());
        assert!(supports(kind, "etcd").unwrap_err().contains("raft-kv"));
    }
    assert!(supports(WorkloadKind::Bank, "twopc").is_ok());
    assert!(supports(WorkloadKind::Register, "quorum").is_ok());
}

#[test]
fn bad_options_are_refused_for_the_workload_that_reads_them() {
    let one_account = WorkloadOptions {
        accounts: vec!["a".into()],
        ..WorkloadOptions::default()
    };
    assert!(build(WorkloadKind::Bank, "twopc", &one_account).is_err());
    assert!(build(WorkloadKind::Register, "raft-kv", &one_account).is_ok());
    let twins = WorkloadOptions {
        accounts: vec!["a".into(), "b".into(), "a".into()],
        ..WorkloadOptions::default()
    };
    assert!(twins
        .validate(WorkloadKind::Bank)
        .unwrap_err()
        .contains("repeat"));
    let no_keys = WorkloadOptions {
        keys_per_window: 0,
        ..WorkloadOptions::default()
    };
    assert!(no_keys.validate(WorkloadKind::Register).is_err());
}

#[test]
fn names_and_serde_agree() {
    for kind in WorkloadKind::ALL {
        assert_eq!(kind.to_string().parse::<WorkloadKind>(), Ok(kind));
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            Value::from(kind.name())
        );
    }
    assert!("Register".parse::<WorkloadKind>().is_err());
    let spec = CheckerSpec::Linearizable {
        model: "cas-register".into(),
        init: Value::Null,
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"checker": "linearizable", "model": "cas-register", "init": null})
    );
    assert_eq!(serde_json::from_value::<CheckerSpec>(json).unwrap(), spec);
    let partial: WorkloadOptions = serde_json::from_str(r#"{"max_transfer": 9}"#).unwrap();
    assert_eq!(partial.max_transfer, 9);
    assert_eq!(partial.accounts, WorkloadOptions::default().accounts);
    assert!(serde_json::from_str::<WorkloadOptions>(r#"{"max_transfers": 9}"#).is_err());
}
