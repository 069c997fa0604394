#!/usr/bin/env python3
"""A Fissure adapter for the bundled raft-kv target, in plain Python 3 (standard library only).

Fissure starts one copy of this program per logical process and writes one JSON request per
line on its stdin; it answers each with one JSON line on stdout (docs/adapters.md):

    -> {"id": 17, "process": 3, "f": "cas", "key": 4, "value": [1, 2],
        "node": "n2", "address": "127.0.0.1:7002", "timeout_ms": 5000}
    <- {"id": 17, "type": "fail", "error": "compare failed: value is 3"}

It implements Fissure's workloads on raft-kv's get/put/cas (and its txn request for the
transactional append and wr workloads), with the same semantics as
Fissure's own Rust clients (workloads/src/workload/clients.rs). Which workload: the
FISSURE_WORKLOAD environment variable Fissure sets, or the first argument.

The rule behind every outcome: answer `ok` only when the node said the operation happened,
`fail` only when it certainly did not (nothing was sent, the node said fail, or only reads
happened so far), and `info` for everything in between (a node's `unknown`, a lost connection
or a timeout after the request that changes something was sent).
"""

import json
import os
import socket
import sys
import time
import traceback

# The keys holding each workload's state (as Fissure's Rust clients use them).
SET_KEY = "set"
COUNTER_KEY = "counter"
BANK_KEY = "bank"
# A set add retries a cas that lost a race this many times.
ADD_ATTEMPTS = 5
# How raft-kv begins the error of a cas whose compare failed (it changed nothing).
COMPARE_FAILED = "compare failed"


def log(text):
    """Diagnostics go to stderr, which Fissure appends to the adapter's log file."""
    print(f"raft_kv.py[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


class Done(Exception):
    """Ends an operation with an answer: raise Done("fail", error="...")."""

    def __init__(self, kind, value=None, error=None):
        super().__init__(kind)
        self.kind, self.value, self.error = kind, value, error


# --------------------------------------------------------------------------------------------
# The node: raft-kv's client protocol, JSON lines over TCP (targets/src/protocol.rs).


class Node:
    """One TCP connection to a node, opened on first use and after any error.

    call() returns the node's answer as (status, value, error) with status "ok", "fail" or
    "unknown", and turns connection trouble into the same three words: a request that was
    never sent is "fail"; trouble after sending is "unknown", and the connection is closed so
    that a late answer can never be read as the next request's.
    """

    def __init__(self):
        self.address = None
        self.sock = None
        self.buffer = b""
        self.next_id = 1

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buffer = None, b""

    def call(self, address, op, deadline):
        if address != self.address:
            self.close()
            self.address = address
        if self.sock is None:
            problem = self.connect(deadline)
            if problem:
                return "fail", None, problem  # nothing was sent
        if time.monotonic() >= deadline:
            return "fail", None, f"out of time before sending {op['op']}"
        rid = self.next_id
        self.next_id += 1
        try:
            self.send({"id": rid, **op}, deadline)
            reply = self.receive(deadline)
        except (OSError, ValueError) as e:
            self.close()
            return "unknown", None, f"{address}: {e or type(e).__name__}"
        if reply.get("id") != rid:
            self.close()
            return "unknown", None, f"answer for id {reply.get('id')} to request {rid}"
        return reply.get("status"), reply.get("value"), reply.get("error")

    def connect(self, deadline):
        """Connects and proves the connection with a `status` round trip (a proxy in front of
        a dead node accepts connections too). Returns a problem, or None."""
        try:
            host, port = self.address.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=left(deadline))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.send({"id": 0, "op": "status"}, deadline)
            proof = self.receive(deadline)
            if proof.get("status") != "ok":
                raise OSError(f"status answered {proof}")
            return None
        except (OSError, ValueError) as e:
            self.close()
            return f"no node reachable at {self.address}: {e or type(e).__name__}"

    def send(self, message, deadline):
        self.sock.settimeout(left(deadline))
        self.sock.sendall((json.dumps(message) + "\n").encode())

    def receive(self, deadline):
        while b"\n" not in self.buffer:
            self.sock.settimeout(left(deadline))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the node closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def left(deadline):
    """Seconds until `deadline`; a spent deadline is a timeout right away."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("out of time")
    return remaining


# --------------------------------------------------------------------------------------------
# The workloads. Each operation function raises Done with its answer.


def plain(status, value, error):
    """A node's answer as it is: ok -> ok, fail -> fail, unknown -> info."""
    if status == "ok":
        raise Done("ok", value=value)
    if status == "fail":
        raise Done("fail", error=error)
    raise Done("info", error=error or f"node answered {status!r}")


def read_state(call, key, empty):
    """The value of `key` before a change (`empty` when missing). A get changes nothing, so
    any trouble here means the operation certainly did not happen: fail."""
    status, value, error = call({"op": "get", "key": key})
    if status != "ok":
        raise Done("fail", error=f"reading {key}: {error}")
    return (empty, None) if value is None else (value, value)


def register(call, f, key, value, deadline):
    # Register key N is raft-kv key "rN"; reads return the value (null when missing).
    if not isinstance(key, int) or isinstance(key, bool) or key < 0:
        raise Done("fail", error=f"a register operation needs an integer key, not {key!r}")
    k = f"r{key}"
    if f == "read":
        plain(*call({"op": "get", "key": k}))
    if f == "write":
        plain(*call({"op": "put", "key": k, "value": value}))
    if f == "cas":
        if not (isinstance(value, list) and len(value) == 2):
            raise Done("fail", error=f"cas needs [from, to], not {value!r}")
        status, _, error = call({"op": "cas", "key": k, "from": value[0], "to": value[1]})
        plain(status, None, error)
    raise Done("fail", error=f"the register workload has no operation {f!r}")


def set_workload(call, f, key, value, deadline):
    # The whole set is one key holding a JSON array; an add is get, then cas(old, old + [x]).
    if f == "read":
        status, stored, error = call({"op": "get", "key": SET_KEY})
        plain(status, [] if stored is None else stored, error)
    if f == "add":
        last = ""
        for _ in range(ADD_ATTEMPTS):
            elements, stored = read_state(call, SET_KEY, [])
            if not isinstance(elements, list):
                raise Done("fail", error=f"the set holds {elements!r}, not an array")
            status, _, error = call(
                {"op": "cas", "key": SET_KEY, "from": stored, "to": elements + [value]}
            )
            if status == "ok":
                raise Done("ok")
            if status != "fail":
                raise Done("info", error=error)
            last = error  # lost a race: this attempt changed nothing, try again
        raise Done("fail", error=f"{ADD_ATTEMPTS} cas attempts failed; last: {last}")
    raise Done("fail", error=f"the set workload has no operation {f!r}")


def counter(call, f, key, value, deadline):
    # The counter is one key holding an integer (missing is 0); an add is get, then
    # cas(old, old + n), retried while it loses races, until the deadline.
    if f == "read":
        status, stored, error = call({"op": "get", "key": COUNTER_KEY})
        plain(status, 0 if stored is None else stored, error)
    if f == "add":
        if not isinstance(value, int) or isinstance(value, bool):
            raise Done("fail", error=f"an add needs an integer, not {value!r}")
        lost = 0
        while True:
            if lost and time.monotonic() >= deadline:
                raise Done("fail", error=f"{lost} cas attempts lost to concurrent adds")
            current, stored = read_state(call, COUNTER_KEY, 0)
            if not isinstance(current, int) or isinstance(current, bool):
                raise Done("fail", error=f"the counter holds {current!r}, not an integer")
            status, _, error = call(
                {"op": "cas", "key": COUNTER_KEY, "from": stored, "to": current + value}
            )
            if status == "fail" and (error or "").startswith(COMPARE_FAILED):
                lost += 1
                continue
            plain(status, None, error)
    raise Done("fail", error=f"the counter workload has no operation {f!r}")


def bank(call, f, key, value, deadline):
    # The whole bank is one key holding {"a0": balance, ...}; missing means every account at
    # its initial balance (from the workload options Fissure passes in the environment).
    options = json.loads(os.environ.get("FISSURE_WORKLOAD_OPTIONS") or "{}")
    accounts = options.get("accounts", [f"a{i}" for i in range(5)])
    initial = {a: options.get("initial_balance", 100) for a in accounts}
    if f == "read":
        status, stored, error = call({"op": "get", "key": BANK_KEY})
        plain(status, initial if stored is None else stored, error)
    if f == "transfer":
        if not isinstance(value, dict):
            raise Done("fail", error=f"not a transfer: {value!r}")
        src, dst, amount = value.get("from"), value.get("to"), value.get("amount")
        if src == dst or not isinstance(amount, int) or amount <= 0:
            raise Done("fail", error="a transfer needs two accounts and a positive amount")
        balances, stored = read_state(call, BANK_KEY, initial)
        if src not in balances or dst not in balances:
            raise Done("fail", error=f"no account {src if src not in balances else dst!r}")
        if balances[src] < amount:
            raise Done("fail", error=f"insufficient funds in {src}: {balances[src]}")
        after = dict(balances, **{src: balances[src] - amount, dst: balances[dst] + amount})
        status, _, error = call({"op": "cas", "key": BANK_KEY, "from": stored, "to": after})
        plain(status, None, error)
    raise Done("fail", error=f"the bank workload has no operation {f!r}")


def txn(call, f, key, value, deadline):
    # append and wr: the micro-ops [[f, k, v], ...] go to raft-kv as one txn request, integer
    # key N as raft-kv key "tN"; the node answers them with every read filled in.
    if f != "txn":
        raise Done("fail", error=f"the transactional workloads have no operation {f!r}")
    mops = []
    for mop in value if isinstance(value, list) else [None]:
        if not (isinstance(mop, list) and len(mop) == 3 and isinstance(mop[1], int)):
            raise Done("fail", error=f"micro-op {mop!r} is not [f, integer key, value]")
        mops.append([mop[0], f"t{mop[1]}", mop[2]])
    status, done, error = call({"op": "txn", "mops": mops})
    if status == "ok":
        try:
            done = [[m[0], int(m[1][1:]), m[2]] for m in done]
        except (TypeError, ValueError, IndexError):
            # It committed, but what it read cannot be told: not an ok the checker can use.
            raise Done("info", error=f"the node answered {done!r}, not micro-ops")
    plain(status, done, error)


WORKLOADS = {
    "register": register,
    "set": set_workload,
    "counter": counter,
    "bank": bank,
    "append": txn,
    "wr": txn,
}


# --------------------------------------------------------------------------------------------
# The adapter loop: one request in, one answer out, flushed.


def handle(run, node, request):
    """Carries out one request and returns the answer to print."""
    # Answer a little before Fissure gives up, so a slow node is our own `info`.
    deadline = time.monotonic() + request.get("timeout_ms", 5000) / 1000 * 0.8

    def call(op):
        return node.call(request["address"], op, deadline)

    try:
        run(call, request["f"], request.get("key"), request.get("value"), deadline)
        answer = Done("info", error="the operation ended without an answer")
    except Done as done:
        answer = done
    except Exception as e:  # a bug here: something may have been sent, so info
        log(traceback.format_exc())
        node.close()
        answer = Done("info", error=f"adapter error: {e!r}")
    reply = {"id": request["id"], "type": answer.kind}
    if answer.kind == "ok":
        reply["value"] = answer.value
    else:
        reply["error"] = answer.error or answer.kind
    return reply


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FISSURE_WORKLOAD", "")
    if name not in WORKLOADS:
        log(f"no workload {name!r}: pass one of {', '.join(WORKLOADS)} or set FISSURE_WORKLOAD")
        sys.exit(2)
    run = WORKLOADS[name]
    node = Node()
    log(f"serving the {name} workload")
    for line in sys.stdin:  # ends when Fissure closes stdin: exit then
        reply = handle(run, node, json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
