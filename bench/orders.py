"""The order scenario of `make bench` alone: one gateway process, `place_order` at 100/s beside the desks' ticks.

A fresh gateway (`python -m realtime.server`, as bench/run.py starts it), BENCH_CLIENTS desks
(default 1000) taking ticks at the steady rate, and in each round ten sockets of the bench
trader sending 1000 market orders at 100/s (`run.run_orders_beside_prices`). Prints one line
per round: orders answered and ok, errors, the round trip's p50/p99/max, and the desks' price
p99 before and beside the orders. For comparing commits quickly; `make bench` is the full run.

    .venv/bin/python bench/orders.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import run
from gateway import LoadGen, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100, help="orders per second (100)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    cookie, trader = setup_django()
    gen = LoadGen()
    ours = run.Server("ours")
    try:
        run.wait_port(ours.port, ours.process)
        ours.first = ours.connect(gen, cookie, run.CLIENTS)["total"] - run.CLIENTS
        time.sleep(1)
        for number in range(args.rounds):
            total = ours.connect(gen, trader, 10)["total"]
            answer = run.run_orders_beside_prices(gen, ours, list(range(total - 10, total)), args.orders, args.rate)
            figures = {
                key: answer.get(key)
                for key in ("answered", "succeeded", "errors", "p50_ms", "p99_ms", "max_ms", "cpu_ms_per_order")
            }
            figures["prices_p99_ms_alone"] = answer["prices_alone"]["p99_ms"]
            figures["prices_p99_ms_beside"] = answer["prices_beside"]["p99_ms"]
            print(f"round {number + 1}: {json.dumps(figures)}", flush=True)
        gen.ask(cmd="close")
    finally:
        gen.stop()
        ours.stop()


if __name__ == "__main__":
    main()
