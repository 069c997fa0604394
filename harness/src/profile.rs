//! How each bundled target is laid out on a cluster: its per-node flags (roles, accounts,
//! timeouts), the bugs it accepts and the cluster sizes it supports.

use anyhow::bail;

/// Targets `fissure run` knows.
pub const TARGETS: &[&str] = &["raft-kv", "quorum", "twopc", "echo"];

/// Every account starts with this balance (the twopc participants' and the bank workload's).
pub const INITIAL_BALANCE: i64 = 100;

/// The planted bugs a target accepts.
pub fn bugs(target: &str) -> &'static [&'static str] {
    match target {
        "raft-kv" => targets::raft::BUGS,
        "quorum" => targets::quorum::BUGS,
        "twopc" => targets::twopc::BUGS,
        _ => &[],
    }
}

pub fn check_bug(target: &str, bug: &str) -> anyhow::Result<()> {
    let known = bugs(target);
    if !known.contains(&bug) {
        if known.is_empty() {
            bail!("{target} has no planted bugs");
        }
        bail!(
            "{target} has no planted bug {bug:?}; it has {}",
            known.join(", ")
        );
    }
    Ok(())
}

pub fn check_nodes(target: &str, nodes: usize) -> anyhow::Result<()> {
    match target {
        "echo" if nodes != 1 => bail!("echo is a single node: use --nodes 1"),
        "twopc" if nodes < 2 => {
            bail!("twopc needs a coordinator and at least one participant: --nodes 2 or more")
        }
        _ if nodes == 0 => bail!("a cluster needs at least one node"),
        _ if nodes > 64 => bail!("{nodes} nodes is more than a local cluster can hold (64)"),
        _ => Ok(()),
    }
}

/// The bank accounts: for twopc four per participant (they live on the participants), else
/// five. Enough that transfers rarely wait for each other's locks.
pub fn accounts(target: &str, nodes: usize) -> Vec<String> {
    let count = match target {
        "twopc" => 4 * nodes.saturating_sub(1).max(1),
        _ => 5,
    };
    (0..count).map(|i| format!("a{i}")).collect()
}

/// Node `i`'s (0-based) mode-specific flags.
pub fn node_args(target: &str, nodes: usize, i: usize, bug: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = match target {
        // Elections well under the nemesis interval, requests answered well within the client's
        // timeout, so a partition shows as fail/info and not as a stall.
        "raft-kv" => vec![
            "--election-timeout-ms".into(),
            "300".into(),
            "--heartbeat-ms".into(),
            "50".into(),
            "--request-timeout-ms".into(),
            "1000".into(),
        ],
        "quorum" => vec!["--request-timeout-ms".into(), "1000".into()],
        // The coordinator tells participants of a commit one at a time, 50 ms apart, so that a
        // crash can land while some know the outcome and others do not (the window in which
        // 2PC must not lose a decision). A correct coordinator survives it.
        "twopc" if i == 0 => vec![
            "--role".into(),
            "coordinator".into(),
            "--request-timeout-ms".into(),
            "1000".into(),
            "--stagger-commit-ms".into(),
            "50".into(),
        ],
        "twopc" => {
            let accounts = accounts(target, nodes);
            // Participant p (1-based among participants) holds every (nodes-1)-th account.
            let mine: Vec<String> = accounts
                .iter()
                .enumerate()
                .filter(|(a, _)| a % (nodes - 1) == i - 1)
                .map(|(_, name)| name.clone())
                .collect();
            vec![
                "--role".into(),
                "participant".into(),
                "--coordinator".into(),
                "n1".into(),
                "--accounts".into(),
                mine.join(","),
                "--initial-balance".into(),
                INITIAL_BALANCE.to_string(),
                "--request-timeout-ms".into(),
                "1000".into(),
            ]
        }
        _ => Vec::new(),
    };
    if let Some(bug) = bug {
        args.extend(["--bug".to_string(), bug.to_string()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twopc_accounts_are_spread_over_participants() {
        let mut held = Vec::new();
        for i in 1..4 {
            let args = node_args("twopc", 4, i, None);
            let at = args.iter().position(|a| a == "--accounts").unwrap();
            held.extend(args[at + 1].split(',').map(str::to_string));
        }
        held.sort();
        let mut all = accounts("twopc", 4);
        all.sort();
        assert_eq!(held, all);
        assert!(node_args("twopc", 4, 0, None).contains(&"coordinator".to_string()));
    }

    #[test]
    fn bugs_and_sizes_are_checked() {
        assert!(check_bug("raft-kv", "stale-read").is_ok());
        assert!(check_bug("raft-kv", "sloppy-quorum").is_err());
        assert!(check_nodes("twopc", 1).is_err());
        assert!(check_nodes("echo", 1).is_ok());
        assert!(check_nodes("raft-kv", 0).is_err());
    }
}
