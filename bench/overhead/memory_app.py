"""The app of the memory test: llmtel.init() as shipped, openai calls at a fixed rate.

    python -m bench.overhead.memory_app --endpoint http://127.0.0.1:4318 --rate 50 --seconds 600

Four calls in five are non-streaming chat calls, one in five a 17-chunk stream, all on
the in-process transport, so the process's memory is llmtel's and the SDK's, not a
server's. Prints one JSON line (calls made, seconds taken) when done.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import llmtel
from bench.overhead import transport


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--service", default="bench-memory")
    args = parser.parse_args(argv)
    shapes = json.loads((args.bodies / "index.json").read_text())["shapes"]
    client = transport.client(transport.load_bodies(args.bodies))
    plan = [
        (shapes[s]["api"], transport.request_kwargs(s, shapes[s]))
        for s in ("chat", "chat", "chat", "chat", "stream17")
    ]
    llmtel.init(service_name=args.service, endpoint=args.endpoint)
    start = time.monotonic()
    calls = 0
    while (now := time.monotonic() - start) < args.seconds:
        due = calls / args.rate
        if due > now:
            time.sleep(due - now)
        api, kwargs = plan[calls % len(plan)]
        transport.call(client, api, kwargs)
        calls += 1
    took = time.monotonic() - start
    llmtel.shutdown(timeout_s=2)
    print(json.dumps({"calls": calls, "seconds": took}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
