#!/usr/bin/env python3
"""raft_kv.py with a flaw: every Nth request it carries out the operation against the node, then
misbehaves instead of answering. For testing that Fissure never takes a broken adapter's word for
an outcome it did not give.

    flaky.py MODE [N]        MODE: crash | hang | garbage; N defaults to 7

The operation may well have taken effect, so Fissure must record it as `info`, kill the adapter,
start a fresh one, and the history must still check out. See docs/adapters.md.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raft_kv  # noqa: E402  (the example adapter next to this file)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "crash"
    every = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if mode not in ("crash", "hang", "garbage"):
        raft_kv.log(f"usage: flaky.py crash|hang|garbage [N], not {mode!r}")
        sys.exit(2)
    name = os.environ.get("FISSURE_WORKLOAD", "")
    run = raft_kv.WORKLOADS[name]
    node = raft_kv.Node()
    for count, line in enumerate(sys.stdin, start=1):
        request = json.loads(line)
        reply = raft_kv.handle(run, node, request)
        if count % every == 0:
            raft_kv.log(f"misbehaving on purpose ({mode}) after request {request['id']}")
            if mode == "crash":
                os._exit(3)
            if mode == "hang":
                while True:
                    time.sleep(60)
            sys.stdout.write("this is not an answer\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
