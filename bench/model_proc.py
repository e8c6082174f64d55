"""The scripted model in a process of its own, answering every request the same way at a fixed
token rate: under hundreds of streams it must not share a GIL with the load generator."""

from __future__ import annotations

import argparse
import time

from tests.support.model_server import Reply, ScriptedModel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--token-delay", type=float, default=0.05)
    parser.add_argument("--first-delay", type=float, default=0.0)
    args = parser.parse_args()
    model = ScriptedModel(port=args.port).start()
    text = " ".join(f"tok{i}" for i in range(args.tokens))
    model.set_default(Reply(text=text, token_delay_s=args.token_delay, first_token_delay_s=args.first_delay))
    while True:
        time.sleep(30)
        model.received.clear()  # only the model's behaviour matters here, not its request log


if __name__ == "__main__":
    main()
