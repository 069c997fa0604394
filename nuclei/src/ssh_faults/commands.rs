//! The shell commands that inject and undo faults on a node, built as text so they can be
//! tested without a node. Every command is idempotent: running it twice leaves the node as
//! running it once does, so a retried or repeated heal is always safe.
//!
//! Fissure's iptables rules live only in chains of its own (`FISSURE-*`), jumped to from the
//! filter table's INPUT and OUTPUT chains. Healing flushes or deletes those chains and never
//! touches anything else: Docker's embedded DNS lives in the nat table, and the node's own
//! rules are not ours to change.

use crate::control::LinkQuality;

/// Where a node's Fissure files live.
pub const NODE_DIR: &str = "/var/lib/fissure";
/// The target process's pid, written by the launching shell.
pub const PID_FILE: &str = "/var/lib/fissure/node.pid";
/// The libfaketime timestamp file the target is started with.
pub const CLOCK_FILE: &str = "/var/lib/fissure/faketime.rc";
/// The shell script that starts the target; kept on the node so a restart (by the nemesis or
/// by `fissure heal`) needs nothing from the controller.
pub const LAUNCH_SCRIPT: &str = "/var/lib/fissure/launch.sh";
/// The link daemon's faults file (latency without netem).
pub const LINK_FAULTS_FILE: &str = "/var/lib/fissure/link-faults.json";

/// Drops packets from partitioned peers (INPUT).
pub const PARTITION_CHAIN: &str = "FISSURE-PARTITION";
/// Random loss on the way in (INPUT) and out (OUTPUT).
pub const LOSS_IN_CHAIN: &str = "FISSURE-LOSS-IN";
pub const LOSS_OUT_CHAIN: &str = "FISSURE-LOSS-OUT";

/// `fissure doctor`'s probe chain (never jumped to; removed by heal should a probe be cut short).
pub const DOCTOR_CHAIN: &str = "FISSURE-DOCTOR";

/// Our chains and the built-in chain each is jumped to from.
const CHAINS: [(&str, &str); 4] = [
    (PARTITION_CHAIN, "INPUT"),
    (LOSS_IN_CHAIN, "INPUT"),
    (LOSS_OUT_CHAIN, "OUTPUT"),
    (DOCTOR_CHAIN, "INPUT"),
];

/// `iptables -w`: waits for the xtables lock instead of failing when two commands race.
const IPT: &str = "iptables -w 5";

/// Creates `chain` and its jump if missing.
fn ensure_chain(chain: &str, from: &str) -> String {
    format!(
        "{{ {IPT} -N {chain} 2>/dev/null || true; }} && \
         {{ {IPT} -C {from} -j {chain} 2>/dev/null || {IPT} -I {from} 1 -j {chain}; }}"
    )
}

/// Replaces the node's partition rules: afterwards it drops exactly the packets from `drop_from`
/// (peer addresses). An empty list heals the node's partitions.
pub fn set_partition(drop_from: &[String]) -> String {
    let mut parts = vec![
        ensure_chain(PARTITION_CHAIN, "INPUT"),
        format!("{IPT} -F {PARTITION_CHAIN}"),
    ];
    for ip in drop_from {
        parts.push(format!("{IPT} -A {PARTITION_CHAIN} -s {ip} -j DROP"));
    }
    parts.join(" && ")
}

/// Drops a share `loss` of the node's packets each way, sparing SSH (port 22) so that the
/// controller keeps control of a lossy node, and loopback, which the link daemon's hops cross
/// (a packet must be lost once per link, not once per hop). `loss <= 0` just flushes.
pub fn set_loss(loss: f64) -> String {
    let mut parts = vec![
        ensure_chain(LOSS_IN_CHAIN, "INPUT"),
        ensure_chain(LOSS_OUT_CHAIN, "OUTPUT"),
        format!("{IPT} -F {LOSS_IN_CHAIN}"),
        format!("{IPT} -F {LOSS_OUT_CHAIN}"),
    ];
    if loss > 0.0 {
        let p = format!("{:.4}", loss.min(1.0));
        parts.push(format!(
            "{IPT} -A {LOSS_IN_CHAIN} -p tcp --dport 22 -j RETURN && \
             {IPT} -A {LOSS_IN_CHAIN} ! -i lo -m statistic --mode random --probability {p} -j DROP"
        ));
        parts.push(format!(
            "{IPT} -A {LOSS_OUT_CHAIN} -p tcp --sport 22 -j RETURN && \
             {IPT} -A {LOSS_OUT_CHAIN} ! -o lo -m statistic --mode random --probability {p} -j DROP"
        ));
    }
    parts.join(" && ")
}

/// Removes every Fissure chain and its jump; fails unless no Fissure chain is left.
pub fn remove_chains() -> String {
    let removals: Vec<String> = CHAINS
        .iter()
        .map(|(chain, from)| {
            format!(
                "while {IPT} -D {from} -j {chain} 2>/dev/null; do :; done; \
                 {IPT} -F {chain} 2>/dev/null; {IPT} -X {chain} 2>/dev/null"
            )
        })
        .collect();
    format!(
        "{}; if {IPT} -S | grep -q '^-N FISSURE'; then \
         echo 'Fissure chains are left:' >&2; {IPT} -S | grep FISSURE >&2; false; fi",
        removals.join("; ")
    )
}

/// Lists the Fissure chains present (one name per line), for checks and `fissure doctor`.
pub fn list_chains() -> String {
    format!("{IPT} -S | awk '$1 == \"-N\" && $2 ~ /^FISSURE/ {{ print $2 }}'")
}

/// netem delay (and jitter) on the node's interface; `None` removes it (and fails if a netem
/// qdisc is left). netem shapes what the node sends: every packet out of a degraded node is
/// late by `latency`, so a round trip through it takes `latency` longer (the link daemon, which
/// delays each direction, adds it both ways). SSH to the node is slowed too.
pub fn set_netem(device: &str, quality: Option<LinkQuality>) -> String {
    match quality {
        Some(q) if !q.latency.is_zero() || !q.jitter.is_zero() => format!(
            "tc qdisc replace dev {device} root netem delay {}ms {}ms",
            q.latency.as_millis(),
            q.jitter.as_millis()
        ),
        _ => format!(
            "tc qdisc del dev {device} root 2>/dev/null; \
             ! tc qdisc show dev {device} | grep -q netem"
        ),
    }
}

/// Whether the kernel has netem: adds and removes a zero delay on loopback.
pub fn probe_netem() -> String {
    "{ tc qdisc add dev lo root netem delay 0ms && tc qdisc del dev lo root; } >/dev/null 2>&1"
        .into()
}

/// Rewrites a file atomically (readers never see half of it) with `contents`.
pub fn write_file(path: &str, contents: &str) -> String {
    format!(
        "printf '%s' {} > {path}.partial && mv -f {path}.partial {path}",
        shell_quote(contents)
    )
}

/// libfaketime's relative offset syntax: signed seconds with a fraction ("+1.500").
pub fn faketime_offset(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let abs = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}\n", abs / 1000, abs % 1000)
}

/// Sets the machine's real clock to `unix_ms` (milliseconds since the epoch, UTC).
pub fn set_system_clock(unix_ms: i128) -> String {
    let sign = if unix_ms < 0 { "-" } else { "" };
    let abs = unix_ms.unsigned_abs();
    format!(
        "date -u -s @{sign}{}.{:03} >/dev/null",
        abs / 1000,
        abs % 1000
    )
}

/// This machine's wall clock in milliseconds since the epoch.
pub fn unix_ms_now() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}

/// Prints the target's process state: `running`, `paused` or `killed` (no live process; a
/// zombie counts as killed).
pub fn process_state() -> String {
    format!(
        "pid=$(cat {PID_FILE} 2>/dev/null); \
         s=$( [ -n \"$pid\" ] && ps -o stat= -p \"$pid\" 2>/dev/null | cut -c1 ); \
         case \"$s\" in T|t) echo paused;; ''|Z|X) echo killed;; *) echo running;; esac"
    )
}

/// A target's own command for a fault, kept on the node next to its launch script (a target
/// file's `node.kill`, `node.pause`, `node.resume`, `node.stop`): run instead of the signal, so
/// that `fissure heal` after a lost controller does the same.
pub fn hook(name: &str) -> String {
    format!("{NODE_DIR}/{name}.sh")
}

/// Sends `signal` to the target's process if it has a live one; for SIGSTOP and SIGCONT, the
/// target's own pause or resume command instead, when it has one.
pub fn signal_process(signal: &str) -> String {
    let by_signal = format!(
        "pid=$(cat {PID_FILE} 2>/dev/null); \
         if [ -n \"$pid\" ]; then kill -{signal} \"$pid\" 2>/dev/null; fi; true"
    );
    let name = match signal {
        "STOP" => "pause",
        "CONT" => "resume",
        _ => return by_signal,
    };
    let script = hook(name);
    // The target's own command only acts on a live daemon (a heal resumes nodes it is unsure of,
    // killed ones included).
    format!(
        "if [ -f {script} ]; then \
           pid=$(cat {PID_FILE} 2>/dev/null); \
           if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then sh {script}; fi; \
         else {by_signal}; fi"
    )
}

/// SIGKILLs the target (after its own kill command, when it has one) and waits (up to 5 s)
/// until it is gone.
pub fn kill_process() -> String {
    let script = hook("kill");
    format!(
        "pid=$(cat {PID_FILE} 2>/dev/null); [ -z \"$pid\" ] && exit 0; \
         if [ -f {script} ] && kill -0 \"$pid\" 2>/dev/null; then sh {script} || exit 1; fi; \
         kill -9 \"$pid\" 2>/dev/null; i=0; \
         while [ $i -lt 500 ]; do \
           s=$(ps -o stat= -p \"$pid\" 2>/dev/null | cut -c1); \
           case \"$s\" in ''|Z|X) exit 0;; esac; sleep 0.01; i=$((i+1)); \
         done; echo \"process $pid survived SIGKILL\" >&2; exit 1"
    )
}

/// Starts the target from its launch script unless it runs already; a paused one is resumed.
pub fn start_process() -> String {
    format!(
        "state=$({}); \
         case \"$state\" in running) exit 0;; paused) {}; exit 0;; esac; \
         sh {LAUNCH_SCRIPT}",
        process_state(),
        signal_process("CONT")
    )
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_set_to_the_millisecond() {
        assert_eq!(
            set_system_clock(1_700_000_000_123),
            "date -u -s @1700000000.123 >/dev/null"
        );
        assert_eq!(set_system_clock(5), "date -u -s @0.005 >/dev/null");
    }
    use std::time::Duration;

    #[test]
    fn a_targets_own_commands_run_instead_of_signals() {
        // The target's own pause (or resume), and only on a live daemon; the signal otherwise.
        let pause = signal_process("STOP");
        assert!(
            pause.starts_with("if [ -f /var/lib/fissure/pause.sh ]; then"),
            "{pause}"
        );
        assert!(
            pause.contains("kill -0 \"$pid\" 2>/dev/null; then sh /var/lib/fissure/pause.sh; fi;")
        );
        assert!(pause.contains("else pid=") && pause.contains("kill -STOP"));
        assert!(signal_process("CONT").contains("/var/lib/fissure/resume.sh"));
        assert!(!signal_process("TERM").contains(".sh"));
        // A kill command of its own on a live daemon, then SIGKILL for whatever is left, and the
        // wait.
        let kill = kill_process();
        assert!(
            kill.contains("if [ -f /var/lib/fissure/kill.sh ] && kill -0 \"$pid\" 2>/dev/null; then sh /var/lib/fissure/kill.sh || exit 1; fi;"),
            "{kill}"
        );
        assert!(kill.contains("kill -9"));
    }

    #[test]
    fn partitions_replace_rules_in_our_chain_only() {
        let cmd = set_partition(&["10.0.0.3".into(), "10.0.0.4".into()]);
        assert!(cmd.contains("-F FISSURE-PARTITION"));
        assert!(cmd.contains("-A FISSURE-PARTITION -s 10.0.0.3 -j DROP"));
        assert!(cmd.contains("-A FISSURE-PARTITION -s 10.0.0.4 -j DROP"));
        assert!(!cmd.contains("-t nat"));
        let heal = set_partition(&[]);
        assert!(heal.contains("-F FISSURE-PARTITION") && !heal.contains("DROP"));
    }

    #[test]
    fn loss_spares_ssh_and_goes_both_ways() {
        let cmd = set_loss(0.25);
        assert!(cmd.contains("--dport 22 -j RETURN"));
        assert!(cmd.contains("--sport 22 -j RETURN"));
        assert_eq!(cmd.matches("--probability 0.2500").count(), 2);
        assert!(cmd.contains("! -i lo -m statistic") && cmd.contains("! -o lo -m statistic"));
        assert!(!set_loss(0.0).contains("statistic"));
    }

    #[test]
    fn removal_deletes_every_chain_and_jump() {
        let cmd = remove_chains();
        for (chain, from) in CHAINS {
            assert!(cmd.contains(&format!("-D {from} -j {chain}")));
            assert!(cmd.contains(&format!("-X {chain}")));
        }
        assert!(!cmd.contains("nat"));
        assert!(
            cmd.ends_with("false; fi"),
            "removal must fail if a chain is left: {cmd}"
        );
    }

    #[test]
    fn netem_delay_and_removal() {
        let q = LinkQuality {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            loss: 0.0,
        };
        assert_eq!(
            set_netem("eth0", Some(q)),
            "tc qdisc replace dev eth0 root netem delay 100ms 20ms"
        );
        assert!(set_netem("eth0", None).starts_with("tc qdisc del dev eth0 root"));
        let loss_only = LinkQuality {
            loss: 0.5,
            ..LinkQuality::default()
        };
        assert!(set_netem("eth0", Some(loss_only)).contains("del"));
    }

    #[test]
    fn faketime_offsets_and_quoting() {
        assert_eq!(faketime_offset(1500), "+1.500\n");
        assert_eq!(faketime_offset(-250), "-0.250\n");
        assert_eq!(faketime_offset(0), "+0.000\n");
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
        assert!(write_file("/x/f", "{}").contains("mv -f /x/f.partial /x/f"));
    }
}
