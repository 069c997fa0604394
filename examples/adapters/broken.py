#!/usr/bin/env python3
"""A deliberately broken Fissure adapter, for testing how Fissure copes (and as a catalogue of
what not to do).

    broken.py MODE [GOOD]

It answers the first GOOD requests (default 1) correctly, with `ok` and the value
{"pid": <its pid>, "answered": <how many it answered before>}, then misbehaves on the next one
according to MODE:

    ok          never misbehaves (a healthy adapter)
    fail        answers fail ("broken.py fails on purpose")
    crash       exits with status 3 without answering
    hang        never answers (and ignores its stdin closing)
    garbage     prints a line that is not JSON
    wrong-id    answers with another request's id
    bad-type    answers type "unknown" (the node protocol's word, not an adapter's)
    junk-after  answers every request correctly, then prints a stray line after the answer

Fissure must make the misbehaving operation `info` (or `fail` for MODE fail, which is the
adapter's honest answer), kill the adapter and start a fresh one for the next operation.
"""

import json
import os
import sys
import time


def log(text):
    # Stderr goes to the adapter's log file; stdout is for answers only.
    print(f"broken.py[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


def answer(obj, extra=""):
    sys.stdout.write(json.dumps(obj) + "\n" + extra)
    sys.stdout.flush()


def main():
    modes = ("ok", "fail", "crash", "hang", "garbage", "wrong-id", "bad-type", "junk-after")
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in modes:
        log(f"usage: broken.py {'|'.join(modes)} [GOOD]")
        sys.exit(2)
    mode = sys.argv[1]
    good = int(sys.argv[2]) if len(sys.argv) == 3 else 1
    log(f"started in mode {mode}, {good} good answers first")
    answered = 0
    for line in sys.stdin:
        request = json.loads(line)
        rid = request["id"]
        fine = {"id": rid, "type": "ok", "value": {"pid": os.getpid(), "answered": answered}}
        if mode == "junk-after":
            answer(fine, extra="a stray line after the answer\n")
        elif mode == "ok" or answered < good:
            answer(fine)
        elif mode == "fail":
            answer({"id": rid, "type": "fail", "error": "broken.py fails on purpose"})
        elif mode == "crash":
            log(f"crashing on purpose at request {rid}")
            sys.exit(3)
        elif mode == "hang":
            log(f"hanging on purpose at request {rid}")
            while True:
                time.sleep(3600)
        elif mode == "garbage":
            sys.stdout.write("this is not JSON\n")
            sys.stdout.flush()
        elif mode == "wrong-id":
            answer({"id": rid + 1000, "type": "ok", "value": 1})
        elif mode == "bad-type":
            answer({"id": rid, "type": "unknown", "error": "maybe"})
        answered += 1
    log("stdin closed: exiting")


if __name__ == "__main__":
    main()
