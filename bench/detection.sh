#!/usr/bin/env bash
# Detection rate of each planted bug, and false alarms on the correct targets, over seeds 1..N
# with the settings of harness/tests/run.rs (3 nodes, 8 s, a fault every second, 150 ops/s).
# Usage: bench/detection.sh [N]   (needs `cargo build --release -p harness`; about 70 s a seed)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-5}"
fissure=target/release/fissure
[ -x "$fissure" ] || { echo "build first: cargo build --release -p harness" >&2; exit 1; }
store="$(mktemp -d)"
trap 'rm -rf "$store"' EXIT
settings="--store $store --time-limit 8s --nemesis-interval 1s --recovery 2s --rate 150 --nodes 3"
cases=(
    "raft-kv stale-read|1|--nemesis partition --bug stale-read"
    "raft-kv correct|0|--nemesis partition,kill"
    "quorum sloppy-quorum|1|--target quorum --nemesis partition --bug sloppy-quorum"
    "quorum correct|0|--target quorum --nemesis partition"
    "twopc no-decision-log|1|--target twopc --nemesis kill --nemesis-targets primaries --bug no-decision-log"
    "twopc correct|0|--target twopc --nemesis kill,partition --nemesis-targets primaries"
)
printf '%-24s %s\n' "case" "as expected / seeds"
for case in "${cases[@]}"; do
    IFS='|' read -r name expected args <<< "$case"
    hits=0
    for seed in $(seq 1 "$seeds"); do
        # shellcheck disable=SC2086
        code=0; "$fissure" run $settings --seed "$seed" $args > /dev/null 2>&1 || code=$?
        [ "$code" = "$expected" ] && hits=$((hits + 1))
    done
    printf '%-24s %d/%d\n' "$name" "$hits" "$seeds"
done
