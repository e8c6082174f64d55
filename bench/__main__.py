"""``python -m bench`` (``make bench``): run the benchmarks, print their tables, write JSON to bench/results/.

Sizes are flags (and ``BENCH_*`` environment variables) so a laptop run can be short and a
careful run long; with the defaults the whole run takes about 30 minutes on two cores (the real
Llama Stack at 500 streams is the slow part: ``--levels 50`` skips most of it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .common import RESULTS

ALL = ("overhead", "concurrency", "tokens", "context")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(ALL)),
                        help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "20")),
                        help="overhead: requests per path")
    parser.add_argument("--levels", default=os.environ.get("BENCH_LEVELS", "50,200,500"),
                        help="concurrency through a real Llama Stack: simultaneous streams per level ('' = none)")
    parser.add_argument("--replay-levels", default=os.environ.get("BENCH_REPLAY_LEVELS", "50,200,500,1000"),
                        help="concurrency against the replay of captured Llama Stack bytes: streams per level ('' = none)")
    parser.add_argument("--split", default=os.environ.get("BENCH_SPLIT", "200,120"),
                        help="concurrency replay: STREAMS,LONG_TOKENS for the fixed/per-token CPU split ('' = none)")
    parser.add_argument("--profile", default=os.environ.get("BENCH_PROFILE") or None,
                        help="concurrency replay: record the backend with py-spy into this directory")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "10,100,300,1000"),
                        help="context: resources per Application")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    outputs: list[str] = []
    for name in chosen:
        started = time.monotonic()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        if name == "overhead":
            from . import overhead

            text = overhead.run(requests=args.requests)
        elif name == "concurrency":
            from . import concurrency

            split = [int(x) for x in args.split.split(",") if x.strip()]
            text = concurrency.run(levels=[int(x) for x in args.levels.split(",") if x.strip()],
                                   replay_levels=[int(x) for x in args.replay_levels.split(",") if x.strip()],
                                   split=(split[0], split[1]) if split else None,
                                   profile=Path(args.profile) if args.profile else None)
        elif name == "tokens":
            from . import tokens

            text = tokens.run()
        else:
            from . import context

            text = context.run(sizes=[int(x) for x in args.sizes.split(",")])
        print(text, flush=True)
        print(f"({name}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        outputs.append(text)
    print(f"\nJSON results in {RESULTS}/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
