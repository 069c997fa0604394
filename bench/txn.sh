#!/usr/bin/env bash
# Isolation checker speed and memory on synthetic list-append histories (a valid one and one with
# a planted G-single per size): parsing and check_txn timed apart, peak RSS of each check, and
# whether the G-single was found (checkers/benches/txn.rs). Then, if the fissure binary is built,
# `fissure check` timed on the same history files.
# The check runs with its defaults (strict serializability, so the planted G-single shows up as
# G-single-item-realtime or G-single-item).
# Usage: bench/txn.sh [SIZES]   (SIZES comma-separated, default 100000,1000000; about 2 GB free
# disk for 1M; `cargo build --release -p harness` first for the fissure check figures, and
# FISSURE_CHECK_ARGS for any flags it needs to read the file as transactions)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-100000,1000000}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
FISSURE_TXN_BENCH_SIZES="$sizes" FISSURE_TXN_BENCH_DIR="$dir" \
    cargo bench -q -p checkers --bench txn
fissure="${CARGO_TARGET_DIR:-target}/release/fissure"
if [ ! -x "$fissure" ]; then
    echo "no $fissure: build it (cargo build --release -p harness) for fissure check figures"
    exit 0
fi
echo
echo "fissure check ($fissure), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %8s %10s %5s %9s  %s\n' "history" "wall s" "peak MiB" "exit" "G-single" "first line"
for file in "$dir"/txn-*.jsonl; do
    code=0
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %M' -o "$dir/time" "$fissure" check ${FISSURE_CHECK_ARGS:-} "$file" \
        > "$dir/out" 2>&1 || code=$?
    read -r wall kb < <(tail -n 1 "$dir/time")
    found="-"
    case "$file" in
    *g-single*) if grep -q "^  G-single-item" "$dir/out"; then found=found; else found=MISSED; fi ;;
    esac
    printf '%-28s %8s %10d %5s %9s  %s\n' "$(basename "$file")" "$wall" $((kb / 1024)) "$code" \
        "$found" "$(head -n 1 "$dir/out" | sed 's/^.*: //' | cut -c1-60)"
done
