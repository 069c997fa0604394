use super::template::{render, sample, words};
use super::*;
use crate::spec::BackendKind;

const MINIMAL: &str = r#"
name = "mydb"
workloads = ["register"]

[node]
start = "/usr/bin/mydb --name {{ node.name }}"
ready = { tcp = "client" }

[client]
adapter = { program = "python3", args = ["client.py"] }
"#;

#[test]
fn every_shipped_target_parses_and_renders() {
    for name in shipped_names() {
        let target = Target::find(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(target.def.name, name);
    }
}

#[test]
fn twopc_spreads_the_accounts_over_its_participants() {
    let def = Target::find("twopc").unwrap().def;
    let mut context = sample(&def);
    context.nodes = 4;
    let mut held = Vec::new();
    for index in 1..=4 {
        context.node.index = index;
        let args = words(&render(def.node.args.as_ref().unwrap(), &context).unwrap()).unwrap();
        if index == 1 {
            assert!(args.windows(2).any(|w| w == ["--role", "coordinator"]));
            continue;
        }
        let at = args.iter().position(|a| a == "--accounts").unwrap();
        held.extend(args[at + 1].split(',').map(str::to_string));
    }
    held.sort();
    let mut all: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    all.sort();
    assert_eq!(held, all);
    let accounts = render(def.bank_accounts.as_ref().unwrap(), &context).unwrap();
    assert_eq!(accounts, "12");
}

#[test]
fn etcd_names_every_member_in_its_initial_cluster() {
    let def = Target::find("etcd").unwrap().def;
    let command = render(def.node.start.as_ref().unwrap(), &sample(&def)).unwrap();
    let argv = words(&command).unwrap();
    let at = argv.iter().position(|a| a == "--initial-cluster").unwrap();
    assert_eq!(
        argv[at + 1],
        "n1=http://10.0.0.2:2380,n2=http://10.0.0.3:2380,n3=http://10.0.0.4:2380"
    );
}

#[test]
fn a_minimal_file_is_enough() {
    let def = parse(MINIMAL).unwrap();
    assert_eq!(def.ports, Ports::default());
    assert_eq!(def.ready_timeout().unwrap(), Duration::from_secs(30));
}

#[test]
fn a_typo_names_the_key_and_its_line() {
    let typo = MINIMAL.replace("start =", "strat =");
    let e = parse(&typo).unwrap_err().to_string();
    assert!(e.contains("line 6") && e.contains("strat"), "{e}");
}

#[test]
fn a_missing_field_is_named() {
    let e = parse(&MINIMAL.replace("workloads = [\"register\"]", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("workloads"), "{e}");
    let e = parse(&MINIMAL.replace("start = \"/usr/bin/mydb --name {{ node.name }}\"", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("node.start"), "{e}");
}

#[test]
fn a_template_that_cannot_render_is_named() {
    let bad = MINIMAL.replace("{{ node.name }}", "{{ node.nmae }}");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.contains("node.start") && e.contains("nmae"), "{e}");
}

#[test]
fn options_are_checked() {
    let def = Target::find("etcd").unwrap().def;
    let options = def.options_for(&["reads=serializable".into()]).unwrap();
    assert_eq!(options["reads"], "serializable");
    assert_eq!(def.options_for(&[]).unwrap()["reads"], "linearizable");
    let e = def.options_for(&["reads=stale".into()]).unwrap_err();
    assert!(e.to_string().contains("linearizable, serializable"), "{e}");
    let e = def.options_for(&["raeds=x".into()]).unwrap_err();
    assert!(e.to_string().contains("no option \"raeds\""), "{e}");
}

#[test]
fn faults_a_target_cannot_take_are_refused_with_the_reason() {
    let etcd = Target::find("etcd").unwrap().def;
    let e = etcd
        .check_faults(&[FaultKind::Kill, FaultKind::Clock], BackendKind::Docker)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clock: etcd reads the clock where libfaketime cannot") && e.contains("vagrant"),
        "{e}"
    );
    // On Vagrant the provider decides (VMs own their clocks): the spec checks it.
    assert!(etcd
        .check_faults(&[FaultKind::Clock], BackendKind::Vagrant)
        .is_ok());
    // Shared peer addresses: the local backend's per-link proxies cannot partition it.
    let e = etcd
        .check_faults(&[FaultKind::Partition], BackendKind::Local)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("partition") && e.contains("--backend docker"),
        "{e}"
    );
    assert!(etcd
        .check_faults(
            &[FaultKind::Partition, FaultKind::Kill, FaultKind::Pause],
            BackendKind::Docker
        )
        .is_ok());
    let raft = Target::find("raft-kv").unwrap().def;
    assert!(raft
        .check_faults(
            &[FaultKind::Partition, FaultKind::Clock, FaultKind::Suspend],
            BackendKind::Local
        )
        .is_ok());
    // The composed suspend is refused wherever one of its parts is: etcd's clock, and its
    // shared peer addresses on the local backend.
    let e = etcd
        .check_faults(&[FaultKind::Suspend], BackendKind::Docker)
        .unwrap_err()
        .to_string();
    assert!(e.contains("suspend: etcd reads the clock"), "{e}");
    let mut limited = raft.clone();
    limited
        .limits
        .insert("pause".into(), "it has no process to stop".into());
    let e = limited
        .check_faults(&[FaultKind::Suspend], BackendKind::Local)
        .unwrap_err()
        .to_string();
    assert!(e.contains("suspend: it has no process to stop"), "{e}");
}

#[test]
fn bugs_sizes_and_workloads_are_checked() {
    let raft = Target::find("raft-kv").unwrap().def;
    assert!(raft.check_bug("stale-read").is_ok());
    assert!(raft.check_bug("sloppy-quorum").is_err());
    assert!(Target::find("twopc").unwrap().def.check_nodes(1).is_err());
    assert!(Target::find("echo").unwrap().def.check_nodes(1).is_ok());
    let quorum = Target::find("quorum").unwrap().def;
    assert!(quorum
        .check_workload(workloads::workload::WorkloadKind::Bank)
        .is_err());
}

#[test]
fn an_unknown_target_lists_the_shipped_ones() {
    let e = Target::find("etdc").unwrap_err().to_string();
    assert!(e.contains("raft-kv") && e.contains("etcd"), "{e}");
}

#[test]
fn inconsistent_files_are_refused_naming_the_key() {
    let cases = [
        (
            MINIMAL.replace("name = \"mydb\"", "name = \"my db\""),
            "name",
        ),
        (
            MINIMAL.replace("ready = {", "pause = \"mydb-ctl freeze\"\nready = {"),
            "node.pause, node.resume",
        ),
        (
            MINIMAL.replace(
                "adapter = { program = \"python3\", args = [\"client.py\"] }",
                "builtin = \"fissure-node\"",
            ),
            "client.builtin",
        ),
        (
            MINIMAL
                .replace(
                    "adapter = { program = \"python3\", args = [\"client.py\"] }",
                    "builtin = \"etcd\"",
                )
                .replace("[\"register\"]", "[\"register\", \"bank\"]"),
            "the etcd client runs register and set",
        ),
    ];
    for (text, expected) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(expected), "wanted {expected:?} in {e}");
    }
}

#[test]
fn a_target_of_its_own_shares_its_peer_addresses_unless_it_says_otherwise() {
    let def = parse(MINIMAL).unwrap();
    assert_eq!(def.peer_addresses(), PeerAddresses::Shared);
    assert!(def
        .check_faults(&[FaultKind::Partition], BackendKind::Local)
        .is_err());
    let per_node = parse(&MINIMAL.replace(
        "workloads = [\"register\"]",
        "workloads = [\"register\"]\npeer-addresses = \"per-node\"",
    ))
    .unwrap();
    assert!(per_node
        .check_faults(&[FaultKind::Partition], BackendKind::Local)
        .is_ok());
    let raft = Target::find("raft-kv").unwrap().def;
    assert_eq!(raft.peer_addresses(), PeerAddresses::PerNode);
}

#[test]
fn an_option_can_choose_the_consistency_model_transactions_are_held_to() {
    use checkers::txn::ConsistencyModel;
    // As a PostgreSQL target would say it: repeatable read is snapshot isolation there.
    let text = r#"
name = "mydb"
workloads = ["append", "wr"]
consistency-model = """
{% if options.isolation == "repeatable-read" %}snapshot-isolation{% else %}{{ options.isolation }}{% endif %}"""

[options.isolation]
default = "serializable"
choices = ["serializable", "repeatable-read", "read-committed"]

[node]
start = "/usr/bin/mydb"
ready = { tcp = "client" }

[client]
adapter = { program = "python3", args = ["client.py"] }
"#;
    let def = parse(text).unwrap();
    let model = |isolation: &str| {
        let options = def
            .options_for(&[format!("isolation={isolation}")])
            .unwrap();
        def.consistency_model(&options).unwrap()
    };
    assert_eq!(model("serializable"), ConsistencyModel::Serializable);
    assert_eq!(
        model("repeatable-read"),
        ConsistencyModel::SnapshotIsolation
    );
    assert_eq!(model("read-committed"), ConsistencyModel::ReadCommitted);
    // Without the key: strict serializable.
    let plain = parse(MINIMAL).unwrap();
    assert_eq!(
        plain.consistency_model(&BTreeMap::new()).unwrap(),
        ConsistencyModel::StrictSerializable
    );
    // A name that is no model is refused when the file is read.
    let bad = MINIMAL.replace(
        "workloads = [\"register\"]",
        "workloads = [\"append\"]\nconsistency-model = \"serialisable\"",
    );
    let err = parse(&bad).unwrap_err().to_string();
    assert!(
        err.contains("consistency-model") && err.contains("\"serialisable\""),
        "{err}"
    );
}

#[test]
fn postgres_runs_as_its_own_user_and_promises_what_its_isolation_level_does() {
    use checkers::txn::ConsistencyModel;
    let def = Target::find("postgres").unwrap().def;
    let start = render(def.node.start.as_ref().unwrap(), &sample(&def)).unwrap();
    // PostgreSQL refuses root: setpriv (which execs, so the kept pid is the postmaster's).
    assert!(start.starts_with("sh -c '"), "{start}");
    assert!(start.contains("setpriv --reuid=postgres"), "{start}");
    assert!(
        start.contains("exec $as $bin/postgres -D \"$d\" -p 5432"),
        "{start}"
    );
    // Every fault reaches the backends too, not only the postmaster.
    for hook in [&def.node.kill, &def.node.pause, &def.node.resume] {
        assert!(hook.as_ref().unwrap().contains("pkill"), "{hook:?}");
    }
    let model = |isolation: &str| {
        let options = def
            .options_for(&[format!("isolation={isolation}")])
            .unwrap();
        def.consistency_model(&options).unwrap()
    };
    assert_eq!(model("serializable"), ConsistencyModel::Serializable);
    assert_eq!(
        model("repeatable-read"),
        ConsistencyModel::SnapshotIsolation
    );
    assert_eq!(model("read-committed"), ConsistencyModel::ReadCommitted);
    assert!(def.options_for(&["isolation=snapshot".into()]).is_err());
    // One server: partitions are refused with the reason, and the client runs transactions only.
    let why = def
        .cannot(FaultKind::Partition, BackendKind::Docker)
        .unwrap();
    assert!(why.contains("one server"), "{why}");
    let mut register = def.clone();
    register.workloads.push("register".into());
    let err = register.validate().unwrap_err().to_string();
    assert!(err.contains("postgres client runs append and wr"), "{err}");
}
