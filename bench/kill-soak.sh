#!/usr/bin/env bash
# Controller-kill soak: N times, SIGKILL the controller of a docker run at a random moment with
# every fault kind active, run `fissure heal`, and check every node with `docker exec` (never
# through Fissure's own SSH): no Fissure iptables chain in any table, no netem/tbf qdisc, no
# stopped process, the target's clock at offset 0, link faults cleared, the target running. Also
# measures the history lost to the kill and whether the history file is intact.
#
# Usage: bench/kill-soak.sh [-n N] [--seed S] [--nodes K] [--delay MIN-MAX] [--interval D]
#                           [--time-limit D] [--rate R] [--cluster NAME] [--out DIR]
#   -n N            iterations (default 50; env N)
#   --seed S        seed of the kill moments and of each run (default: from the clock; printed,
#                   pass it again to repeat a soak; env SEED). Iteration i runs with --seed S*1000+i
#   --nodes K       cluster size (default 5; env NODES)
#   --delay MIN-MAX kill moment, seconds after the run's history file is created, uniform
#                   (default 2-12; env DELAY)
#   --interval D    --nemesis-interval of the runs (default 1s: each kind's fault is in force
#                   about half the time; env INTERVAL)
#   --time-limit D  --time-limit of the runs (default 40s, past the latest kill; env TIME_LIMIT)
#   --rate R        client operations per second (default 100; env RATE)
#   --cluster NAME  the cluster's name (default soak-<pid>; it must not exist)
#   --out DIR       results: results.tsv, soak.log, runs/<i>/ (default /tmp/kill-soak-<stamp>)
#   FISSURE=PATH    the binary (default target/release/fissure; copied into DIR for the soak,
#                   so a rebuild meanwhile changes nothing). Builds nothing but the node image
#                   (`fissure image ensure`).
#   FISSURE_STATE_DIR  cluster state (default DIR/state, private to the soak)
#
# One cluster is brought up and used by every iteration, as a long-lived cluster (`fissure
# cluster up nightly`) is used after a crash: each run starts on what the previous heal left,
# so a heal that leaves a node unusable also fails the next iteration's `run` check. It is
# brought down on exit, whatever the exit.
#
# Exit: 0 every check passed in every iteration, 1 some check failed, 2 usage or prerequisites.
set -uo pipefail
cd "$(dirname "$0")/.."

N="${N:-50}"
SEED="${SEED:-}"
NODES="${NODES:-5}"
DELAY="${DELAY:-2-12}"
INTERVAL="${INTERVAL:-1s}"
TIME_LIMIT="${TIME_LIMIT:-40s}"
RATE="${RATE:-100}"
CLUSTER=""
OUT=""
die() { echo "kill-soak: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --nodes) NODES="$2"; shift 2 ;;
        --delay) DELAY="$2"; shift 2 ;;
        --interval) INTERVAL="$2"; shift 2 ;;
        --time-limit) TIME_LIMIT="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --cluster) CLUSTER="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$N" =~ ^[0-9]+$ && "$N" -ge 1 ]] || die "-n must be a positive integer, got $N"
[[ "$NODES" =~ ^[0-9]+$ && "$NODES" -ge 1 ]] || die "--nodes must be a positive integer"
[[ "$DELAY" =~ ^([0-9]+)-([0-9]+)$ ]] || die "--delay must read MIN-MAX in seconds, got $DELAY"
MIN_MS=$((BASH_REMATCH[1] * 1000)); MAX_MS=$((BASH_REMATCH[2] * 1000))
[ "$MIN_MS" -le "$MAX_MS" ] || die "--delay: MIN is above MAX"
[ -n "$SEED" ] || SEED=$(( $(date +%s) % 1000000 ))
[[ "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
CLUSTER="${CLUSTER:-soak-$$}"
OUT="${OUT:-/tmp/kill-soak-$(date -u +%Y%m%dT%H%M%SZ)}"

# --- prerequisites ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (the node image is built with mmdebstrap --mode=root)"
command -v docker >/dev/null || die "no docker command"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "no Docker daemon answers: $(docker version 2>&1 | tail -n 1)"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
SRC_BIN="${FISSURE:-target/release/fissure}"
[ -x "$SRC_BIN" ] || die "no fissure binary at $SRC_BIN: cargo build --release -p harness (or set FISSURE)"
mkdir -p "$OUT/runs" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
BIN="$OUT/fissure"
cp "$SRC_BIN" "$BIN.partial" && mv -f "$BIN.partial" "$BIN" || die "cannot copy $SRC_BIN"
export FISSURE_STATE_DIR="${FISSURE_STATE_DIR:-$OUT/state}"
touch "$OUT/.btime-probe"
[ "$(stat -c %W "$OUT/.btime-probe")" != 0 ] \
    || die "the filesystem of $OUT records no file birth times (needed to date history events): use --out elsewhere"
rm -f "$OUT/.btime-probe"
LOG="$OUT/soak.log"
TSV="$OUT/results.tsv"
say() { echo "$*" | tee -a "$LOG"; }

controller=""
cleanup() {
    local code=$?
    trap - EXIT INT TERM
    if [ -n "$controller" ] && kill -0 "$controller" 2>/dev/null; then
        kill -KILL "$controller" 2>/dev/null; wait "$controller" 2>/dev/null
    fi
    "$BIN" cluster down "$CLUSTER" --force >>"$LOG" 2>&1 \
        || echo "kill-soak: cluster down $CLUSTER failed (see $LOG); removing by label" >&2
    local filter="label=fissure.cluster=$CLUSTER"
    local left
    left=$(docker ps -aq --filter "$filter")
    [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1
    left=$(docker network ls -q --filter "$filter")
    [ -z "$left" ] || docker network rm $left >/dev/null 2>&1
    rm -f "$BIN"  # the copy of the binary (its sha256 is in soak.log)
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "kill-soak: N=$N seed=$SEED nodes=$NODES delay=${DELAY}s interval=$INTERVAL time-limit=$TIME_LIMIT rate=$RATE"
say "  binary $SRC_BIN sha256 $(sha256sum "$BIN" | cut -c1-16), out $OUT"
say "  repeat: $0 -n $N --seed $SEED --nodes $NODES --delay $DELAY --interval $INTERVAL --time-limit $TIME_LIMIT --rate $RATE"
image=$("$BIN" image ensure 2>>"$LOG") || die "fissure image ensure failed (see $LOG)"
say "  node image $image"
"$BIN" cluster up "$CLUSTER" --nodes "$NODES" >>"$LOG" 2>&1 || die "cluster up $CLUSTER failed (see $LOG)"
STATE="$FISSURE_STATE_DIR/clusters/$CLUSTER"
LEDGER="$STATE/ledger.jsonl"
mapfile -t NODE_IDS < <(jq -r '.nodes[].id' "$STATE/cluster.json")
mapfile -t CONTAINERS < <(jq -r '.nodes[].container' "$STATE/cluster.json")
MECHANISM=$(jq -r '.latency' "$STATE/cluster.json")
say "  cluster $CLUSTER: ${#NODE_IDS[@]} nodes, latency by $MECHANISM"

# The kill moments, drawn before anything else uses $RANDOM.
RANDOM=$SEED
DELAYS=()
for ((i = 1; i <= N; i++)); do
    DELAYS+=($((MIN_MS + (RANDOM * 32768 + RANDOM) % (MAX_MS - MIN_MS + 1))))
done

# --- probes (run inside each container with `docker exec`) ----------------------------------
# key=value lines; the host decides what passes.
PROBE=$(cat <<'EOF'
d=/var/lib/fissure
n=0; for t in filter nat mangle raw security; do
  c=$(iptables -w 5 -t $t -S 2>/dev/null | grep -c FISSURE); n=$((n + c)); done; echo "ipt=$n"
if command -v ip6tables >/dev/null; then n=0; for t in filter nat mangle raw security; do
  c=$(ip6tables -w 5 -t $t -S 2>/dev/null | grep -c FISSURE); n=$((n + c)); done; echo "ip6t=$n"; fi
if command -v nft >/dev/null; then echo "nft=$(nft list ruleset 2>/dev/null | grep -ci fissure)"; fi
echo "drops=$(iptables -w 5 -S FISSURE-PARTITION 2>/dev/null | grep -c -- '-j DROP')"
echo "lossrules=$(iptables -w 5 -S 2>/dev/null | grep -c statistic)"
echo "qdisc=$(tc qdisc show 2>/dev/null | grep -Eo 'netem|tbf' | sort -u | tr '\n' ' ')"
echo "stopped=$(ps -eo pid=,stat=,comm= | awk '$2 ~ /^[Tt]/ { printf "%s/%s ", $1, $3 }')"
echo "clock=$(tr -d '\n' < $d/faketime.rc 2>/dev/null)"
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
echo "skew=$(( $(LD_PRELOAD=$lib FAKETIME_TIMESTAMP_FILE=$d/faketime.rc FAKETIME_NO_CACHE=1 date +%s) - $(date +%s) ))"
echo "links=$(tr -d ' \n' < $d/link-faults.json 2>/dev/null)"
p=$(cat $d/links.pid 2>/dev/null); echo "linksd=$([ -n "$p" ] && ps -o stat= -p "$p" | cut -c1)"
p=$(cat $d/node.pid 2>/dev/null); echo "target=$([ -n "$p" ] && ps -o stat= -p "$p" | cut -c1)"
EOF
)
# After the heal only, with the node's id, the target's own client address and the latency
# mechanism as $1 $2 $3: the target answers the client protocol's `status` as itself, its peer
# port accepts, and (link daemon) 5 status round trips through the daemon's client link take
# under 400 ms in all (a latency fault still applied by the daemon delays each message by 50-150
# ms each way). A restarted target needs a moment: up to 15 s.
PORTS=$(cat <<'EOF'
ip=$(ip -4 -o addr show scope global | awk '{ sub("/.*", "", $4); print $4; exit }')
status() {  # status ADDR ID COUNT: COUNT status requests on one connection, each answered ok by ID
  perl -MIO::Socket::INET -e '
    my ($addr, $id, $n) = @ARGV; $SIG{ALRM} = sub { exit 3 }; alarm 4;
    my $s = IO::Socket::INET->new(PeerAddr => $addr, Timeout => 2) or exit 1;
    for my $i (1 .. $n) { print $s "{\"id\":$i,\"op\":\"status\"}\n"; my $l = <$s>;
      exit 2 unless defined $l && $l =~ /"status":"ok"/ && $l =~ /"id":"\Q$id\E"/; }' "$@"
}
accepts() { perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 1) ? 0 : 1)' "$1"; }
rtt5() {
  t0=$(date +%s%N); status "$ip:7001" "$1" 5; rc=$?; t1=$(date +%s%N)
  echo "link_rtt5=$([ $rc = 0 ] && echo $(( (t1 - t0) / 1000000 )) || echo "failed($rc)")"
}
if [ "$4" = before ]; then [ "$3" = link-daemon ] && rtt5 "$1"; exit 0; fi
for try in $(seq 1 150); do
  if status "$2" "$1" 1 && accepts 127.0.0.1:7100; then
    echo "ports=ok after $try"
    [ "$3" = link-daemon ] && rtt5 "$1"
    exit 0
  fi
  sleep 0.1
done; echo "ports=no status answer from $2 as $1, or peer port closed"
EOF
)
if [ "$MECHANISM" = link-daemon ]; then
    TARGET_ADDR=127.0.0.1:7000  # the daemon's client link on IP:7001 fronts it
else
    TARGET_ADDR=127.0.0.1:7001
fi

# probe <dir> before|after: runs the probe on every node at once, one file per node. Before the
# heal the link round trips are measured once (a paused or killed target fails them), to show
# that the measure sees a latency fault in force.
probe() {
    local dir=$1 pids=() k
    mkdir -p "$dir"
    for k in "${!CONTAINERS[@]}"; do
        docker exec "${CONTAINERS[$k]}" \
            sh -c "$PROBE; set -- ${NODE_IDS[$k]} $TARGET_ADDR $MECHANISM $2; $PORTS" \
            >"$dir/${NODE_IDS[$k]}" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
}
val() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# Faults a node shows, as "kind@node" words: what the killed controller left in force.
observed() {
    local dir=$1 node f out=()
    for node in "${NODE_IDS[@]}"; do
        f="$dir/$node"
        [ "$(val "$f" drops)" -gt 0 ] 2>/dev/null && out+=("partition@$node")
        [ "$(val "$f" lossrules)" -gt 0 ] 2>/dev/null && out+=("loss@$node")
        # A degraded node's faults file slows its client link (peers' files name it too).
        val "$f" links | jq -e '(.client.forward // {}) | (.latency // 0) > 0 or (.jitter // 0) > 0' \
            >/dev/null 2>&1 && out+=("latency@$node")
        [ -n "$(val "$f" qdisc | tr -d ' ')" ] && out+=("latency@$node")
        case "$(val "$f" target)" in T|t) out+=("pause@$node") ;; ''|Z|X) out+=("kill@$node") ;; esac
        local clock; clock=$(val "$f" clock); [ -n "$clock" ] && [ "$clock" != "+0.000" ] && out+=("clock@$node")
    done
    printf '%s\n' "${out[@]}" | sort -u | grep -v '^$'
}

# What the ledger says may be in force, as "kind@node" (a loss entry of 0 is the companion of
# a latency fault, not a loss).
ledger_open() {
    jq -cR 'fromjson? // empty' "$LEDGER" 2>/dev/null | jq -rs '
        reduce .[] as $e ({};
            if $e.op == "apply" then .["\($e.kind)@\($e.node)"] = $e.detail
            elif $e.op == "undo" then del(.["\($e.kind)@\($e.node)"])
            elif $e.op == "healed" then {} else . end)
        | to_entries[] | select((.key | startswith("loss@")) and .value == 0 | not) | .key' | sort -u
}
ledger_all() {  # every open entry, loss of 0 included
    jq -cR 'fromjson? // empty' "$LEDGER" 2>/dev/null | jq -rs '
        reduce .[] as $e ({};
            if $e.op == "apply" then .["\($e.kind)@\($e.node)"] = $e.detail
            elif $e.op == "undo" then del(.["\($e.kind)@\($e.node)"])
            elif $e.op == "healed" then {} else . end) | keys[]' | sort -u
}
# "kind:nodes,kind:nodes" from kind@node words.
by_kind() { sed 's/@.*//' | sort | uniq -c | awk '{ printf "%s%s:%s", (NR > 1 ? "," : ""), $2, $1 }'; }
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }

# node_checks FILE: the node checks one node's probe output fails, as "check<TAB>why" lines.
# The target's listeners and the link round trips are checked only after the heal (the probe
# before it does not wait for a restarted target).
node_checks() {
    local f=$1 v
    bad() { printf '%s\t%s\n' "$1" "$2"; }
    v=$(val "$f" ipt); [ "$v" = 0 ] || bad iptables "${v:-no answer}: FISSURE lines in iptables -S (filter nat mangle raw security)"
    v=$(val "$f" ip6t); [ -z "$v" ] || [ "$v" = 0 ] || bad iptables "$v FISSURE lines in ip6tables"
    v=$(val "$f" nft); [ -z "$v" ] || [ "$v" = 0 ] || bad iptables "$v fissure lines in nft list ruleset"
    v=$(val "$f" qdisc | tr -d ' '); [ -z "$v" ] || bad qdisc "$(val "$f" qdisc)"
    v=$(val "$f" stopped | tr -d ' '); [ -z "$v" ] || bad stopped "$(val "$f" stopped)"
    v=$(val "$f" clock); [ "$v" = "+0.000" ] || bad clock "file '$v'"
    v=$(val "$f" skew); [[ "$v" =~ ^-?[01]$ ]] || bad clock "the target's faked clock is off by ${v}s"
    v=$(val "$f" links); [ -z "$v" ] || [ "$v" = "{}" ] || bad links "faults file $v"
    case "$(val "$f" target)" in ''|Z|X|T|t) bad target "process state '$(val "$f" target)'" ;; esac
    if grep -q '^ports=' "$f"; then
        v=$(val "$f" ports); [[ "$v" == ok* ]] || bad target "$v"
    fi
    if [ "$MECHANISM" = link-daemon ]; then
        case "$(val "$f" linksd)" in ''|Z|X|T|t) bad links "link daemon state '$(val "$f" linksd)'" ;; esac
        if grep -q '^ports=' "$f"; then
            v=$(val "$f" link_rtt5)
            [[ "$v" =~ ^[0-9]+$ && "$v" -lt 400 ]] \
                || bad links "5 status round trips through the client link took ${v:-not tried} ms"
        fi
    fi
}

CHECKS=(run heal ledger iptables qdisc stopped clock links target history)
printf 'iter\trun_seed\tdelay_ms\tat_kill\tledger_at_kill\theal_rc\theal_ms\t%s\ttorn\tevents\thistory_lost_ms\tsince_write_ms\tcontroller_children\n' \
    "$(IFS=$'\t'; echo "${CHECKS[*]}")" > "$TSV"
declare -A FAILS KIND_SEEN BEFORE_FAIL
KINDS_COUNT=()
LOST=()
passes=0
for ((i = 1; i <= N; i++)); do
    delay=${DELAYS[$((i - 1))]}
    run_seed=$((SEED * 1000 + i))
    it="$OUT/runs/$i"
    mkdir -p "$it"
    declare -A R=()
    for c in "${CHECKS[@]}"; do R[$c]=pass; done
    note=""
    "$BIN" run --backend docker --cluster "$CLUSTER" --nodes "${#NODE_IDS[@]}" \
        --nemesis partition,kill,pause,clock,latency,loss --nemesis-interval "$INTERVAL" \
        --time-limit "$TIME_LIMIT" --rate "$RATE" --seed "$run_seed" --store "$it/store" \
        >"$it/run.out" 2>&1 </dev/null &
    controller=$!
    # Recording starts when the run creates its history (time zero of its events).
    history="" deadline=$(( $(now_ms) + 90000 ))
    while :; do
        for f in "$it"/store/*/*/history.jsonl; do [ -e "$f" ] && history=$f; done
        [ -n "$history" ] && break
        if ! kill -0 "$controller" 2>/dev/null || [ "$(now_ms)" -gt "$deadline" ]; then break; fi
        sleep 0.01
    done
    at_kill="" ledger_kill="" heal_rc="" heal_ms="" torn="" events="" lost="" since_write="" children=""
    if [ -z "$history" ]; then
        R[run]=fail; note="the run never started recording: $(tail -n 3 "$it/run.out" | tr '\n' ' ')"
        kill -KILL "$controller" 2>/dev/null; wait "$controller" 2>/dev/null; controller=""
    else
        birth=$(date -d "$(stat -c %w "$history")" +%s%N)
        kill_target=$(( birth / 1000000 + delay ))
        wait_ms=$(( kill_target - $(now_ms) ))
        [ "$wait_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
        # Like the OOM killer: SIGKILL to the controller process alone (it runs in this script's
        # process group; any child it has is left to die or linger on its own, as in a crash).
        children=$(ps -o pid=,comm= --ppid "$controller" 2>/dev/null | awk '{ printf "%s/%s ", $1, $2 }')
        if kill -0 "$controller" 2>/dev/null; then
            t=$EPOCHREALTIME
            kill -KILL "$controller"
            kill_ns=$(( ${t%.*} * 1000000000 + 10#${t#*.} * 1000 ))
            wait "$controller" 2>/dev/null
        else
            R[run]=fail; note="the controller had ended before the kill: $(tail -n 2 "$it/run.out" | tr '\n' ' ')"
            kill_ns=$(( $(now_ms) * 1000000 ))
            wait "$controller" 2>/dev/null
        fi
        controller=""
        # Children alive after the kill (none expected: SSH is in process).
        left=""; for c in $children; do kill -0 "${c%%/*}" 2>/dev/null && left+="$c "; done
        children="${children:-none}${left:+ alive after: $left}"

        # What was in force at the kill: on the nodes, and in the ledger.
        probe "$it/before" before
        observed "$it/before" > "$it/at-kill"
        ledger_open > "$it/ledger-at-kill"
        ledger_all > "$it/ledger-all"
        at_kill=$(by_kind < "$it/at-kill"); at_kill=${at_kill:-none}
        ledger_kill=$(by_kind < "$it/ledger-at-kill"); ledger_kill=${ledger_kill:-none}
        # Every fault seen on a node is in the ledger.
        uncovered=$(while read -r w; do
            [ -z "$w" ] || grep -qx "$w" "$it/ledger-all" || echo "$w"
        done < "$it/at-kill" | tr '\n' ' ')
        [ -z "$uncovered" ] || { R[ledger]=fail; note+="not in the ledger at the kill: $uncovered; "; }
        while read -r k; do [ -n "$k" ] && KIND_SEEN[$k]=$(( ${KIND_SEEN[$k]:-0} + 1 )); done \
            < <(sed 's/@.*//' "$it/at-kill" | sort -u)
        KINDS_COUNT+=("$(sed 's/@.*//' "$it/at-kill" | sort -u | grep -c .)")

        # The heal, as a person would run it after the crash (no --force: SIGKILL drops the lock).
        h0=$(now_ms)
        timeout 180 "$BIN" heal "$CLUSTER" >"$it/heal.out" 2>&1; heal_rc=$?
        heal_ms=$(( $(now_ms) - h0 ))
        if [ "$heal_rc" != 0 ]; then
            R[heal]=fail; note+="heal exit $heal_rc: $(tail -n 2 "$it/heal.out" | tr '\n' ' '); "
            if grep -q "in use" "$it/heal.out"; then
                "$BIN" heal "$CLUSTER" --force >>"$it/heal.out" 2>&1
            fi
        fi
        [ -z "$(ledger_all)" ] || { R[ledger]=fail; note+="ledger still open after heal: $(ledger_all | tr '\n' ' '); "; }

        # Every node, from inside; and the same checks on the nodes as the kill left them, to
        # show that each check can fail (how often it would have without the heal).
        probe "$it/after" after
        for node in "${NODE_IDS[@]}"; do
            while IFS=$'\t' read -r c why; do
                R[$c]=fail; note+="$node $c: $why; "
            done < <(node_checks "$it/after/$node")
            if [ "$MECHANISM" = link-daemon ]; then
                lat=0; grep -qx "latency@$node" "$it/at-kill" && lat=1
                # node, latency fault at the kill, round trips (ms) before and after the heal
                echo "$node $lat $(val "$it/before/$node" link_rtt5) $(val "$it/after/$node" link_rtt5)" >> "$it/link-rtt"
            fi
        done
        for c in $(for node in "${NODE_IDS[@]}"; do node_checks "$it/before/$node" | cut -f1; done | sort -u); do
            BEFORE_FAIL[$c]=$(( ${BEFORE_FAIL[$c]:-0} + 1 ))
        done

        # The history: every line JSON, and how much of the end the kill lost.
        lines=$(wc -l < "$history")
        [ -s "$history" ] && [ "$(tail -c 1 "$history" | od -An -c | tr -d ' ')" != '\n' ] && torn=1 || torn=0
        parsed=$(head -n "$lines" "$history" | jq -cR 'fromjson? // empty' 2>/dev/null | grep -c .)
        events=$parsed
        [ "$parsed" = "$lines" ] || { R[history]=fail; note+="history: $((lines - parsed)) of $lines complete lines are not JSON; "; }
        last_ns=$(head -n "$lines" "$history" | tail -n 1 | jq -r '.time // empty' 2>/dev/null)
        mtime=$(date -d "$(stat -c %y "$history")" +%s%N)
        since_write=$(( (kill_ns - mtime) / 1000000 ))
        if [ -n "$last_ns" ]; then
            lost=$(( (kill_ns - birth - last_ns) / 1000000 ))
            LOST+=("$lost")
        else
            R[history]=fail; note+="history: no event with a time; "; lost=NA
        fi
    fi

    ok=1; row=()
    for c in "${CHECKS[@]}"; do
        row+=("${R[$c]}")
        [ "${R[$c]}" = pass ] || { ok=0; FAILS[$c]=$(( ${FAILS[$c]:-0} + 1 )); }
    done
    [ $ok = 1 ] && passes=$((passes + 1))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$run_seed" "$delay" \
        "$at_kill" "$ledger_kill" "$heal_rc" "$heal_ms" "$(IFS=$'\t'; echo "${row[*]}")" \
        "$torn" "$events" "$lost" "$since_write" "$children" >> "$TSV"
    checks=""; for c in "${CHECKS[@]}"; do checks+="$c=${R[$c]} "; done
    say "$(printf '#%-3d kill at %5.2fs  at kill: %-44s heal rc=%s %5sms  %s lost=%sms (last write %sms before)%s' \
        "$i" "$(echo "$delay / 1000" | bc -l)" "$at_kill" "$heal_rc" "$heal_ms" "$checks" "$lost" \
        "$since_write" "$([ "$torn" = 1 ] && echo ', torn last line')")"
    [ -z "$note" ] || say "     $note"
    unset R
done

# --- summary ---------------------------------------------------------------------------------
pct() {  # nearest rank
    printf '%s\n' "${LOST[@]}" | sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
        if (NR == 0) { print "NA"; exit } r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}
say ""
say "summary: N=$N seed=$SEED nodes=${#NODE_IDS[@]} ($MECHANISM): $passes passed, $((N - passes)) failed"
fails=""; for c in "${CHECKS[@]}"; do fails+="$c=${FAILS[$c]:-0} "; done
say "  failures by check: $fails"
before=""; for c in iptables qdisc stopped clock links target; do before+="$c=${BEFORE_FAIL[$c]:-0} "; done
say "  the same node checks on the nodes as the kill left them (iterations that would fail without the heal): $before"
kinds=""; for k in partition loss latency pause kill clock; do kinds+="$k=${KIND_SEEN[$k]:-0} "; done
say "  kinds in force at the kill (iterations, of $N): $kinds"
say "  kinds at once: $(printf '%s\n' "${KINDS_COUNT[@]}" | sort -n | uniq -c | awk '{ printf "%s%d kinds x%d", (NR > 1 ? ", " : ""), $2, $1 }')"
say "  history lost (kill - wall time of the last event on disk), ms: p50=$(pct 50) p99=$(pct 99) max=$(pct 100) (n=${#LOST[@]})"
heals=$(awk -F'\t' 'NR > 1 && $7 != "" { print $7 }' "$TSV" | sort -n)
say "  heal took, ms: p50=$(echo "$heals" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') max=$(echo "$heals" | tail -n 1)"
if [ "$MECHANISM" = link-daemon ]; then
    say "  5 status round trips through a node's client link, ms: $(cat "$OUT"/runs/*/link-rtt 2>/dev/null | awk '
        $2 == 1 && $3 ~ /^[0-9]+$/ { if (!n1++ || $3 < lo) lo = $3 }
        $2 == 0 && $3 ~ /^[0-9]+$/ { if (!n0++ || $3 > hi) hi = $3 }
        $4 ~ /^[0-9]+$/ { if (!na++ || $4 > ha) ha = $4 }
        END { printf "before the heal, latency fault on the node: min %s (n=%d); no latency fault: max %s (n=%d); after the heal: max %s (n=%d)",
              lo, n1, hi, n0, ha, na }')"
fi
say "  torn last lines: $(awk -F'\t' 'NR > 1 && $18 == 1' "$TSV" | wc -l)"
say "  results: $TSV"
[ "$passes" = "$N" ]
