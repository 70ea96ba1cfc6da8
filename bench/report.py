"""The table `make bench` prints (the gateway beside the reference, with ratios) and its targets."""

from __future__ import annotations


def fmt(value, digits=1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(ours: dict, ref: dict) -> str:
    rows = ["| scenario | figure | gateway (daphne) | bare websockets | ratio |", "|---|---|---|---|---|"]

    def row(scenario, label, a, b, digits=1):
        ratio = fmt(a / b, 2) + "×" if a is not None and b else "-"
        rows.append(f"| {scenario} | {label} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} |")

    for name in ("burst", "steady", "slow"):
        o, r = ours[name], ref[name]
        rounds = o.get("rounds")  # burst and steady: several rounds, as `combine` sums them up
        median, worst = (" (median round)", " (worst round)") if rounds else ("", "")
        row(name, "deliveries/s" + median, o["deliveries_per_s"], r["deliveries_per_s"], 0)
        row(name, f"delivered / expected{f' ({rounds} rounds)' if rounds else ''}", o["deliveries"], r["deliveries"], 0)
        rows[-1] = rows[-1].replace(f"| {o['deliveries']:.0f} |", f"| {o['deliveries']} / {o['expected']} |", 1)
        row(name, "lost", o["lost"], r["lost"], 0)
        row(name, "p50 latency ms" + median, o["p50_ms"], r["p50_ms"])
        row(name, "p99 latency ms" + worst, o["p99_ms"], r["p99_ms"])
        row(name, "max latency ms" + worst, o["max_ms"], r["max_ms"])
        row(
            name,
            "server CPU µs/delivery" + (" (all rounds)" if rounds else ""),
            o["cpu_us_per_delivery"],
            r["cpu_us_per_delivery"],
        )
    row("slow", "server RSS growth MB", ours["slow"]["rss_growth_mb"], ref["slow"]["rss_growth_mb"])
    row("idle", "connections", ours["idle"]["connections"], ref["idle"]["connections"], 0)
    row("idle", "RSS KB/connection", ours["idle"]["rss_kb_per_connection"], ref["idle"]["rss_kb_per_connection"])
    row(
        "idle",
        "idle CPU % of a core, silent clients",
        ours["idle"]["idle_cpu_percent"],
        ref["idle"]["idle_cpu_percent"],
    )
    row(
        "idle",
        "idle CPU % of a core, 30 s heartbeats",
        ours["idle"]["heartbeat_cpu_percent"],
        ref["idle"]["heartbeat_cpu_percent"],
    )
    row("idle", "seconds to connect all", ours["connect_seconds"], ref["connect_seconds"])
    for key, where in (("commands", "one process"), ("commands_two", "two processes")):
        c = ours[key]
        rows.append(
            f"| commands, {where} | place_order at 100/s: answered/sent, ok | {c['answered']}/{c['sent']}, {c['succeeded']} ok | - | - |"
        )
        rows.append(
            f"| commands, {where} | round trip p50 / p99 / max ms | {fmt(c['p50_ms'])} / {fmt(c['p99_ms'])} / {fmt(c['max_ms'])} | - | - |"
        )
    prices = ours["commands"]
    for key, label in (("prices_alone", "ticks alone"), ("prices_beside", "ticks while orders flow")):
        p = prices[key]
        rows.append(
            f"| commands, one process | desks' price p50 / p99 ms, {label} ({p['deliveries']}/{p['expected']}) "
            f"| {fmt(p['p50_ms'])} / {fmt(p['p99_ms'])} | - | - |"
        )
    return "\n".join(rows)


def commands_ok(c: dict) -> bool:
    return (c["p99_ms"] or 1e9) < 25 and c["answered"] == c["sent"] and c["succeeded"] == c["sent"]


def prices_unaffected(c: dict) -> bool:
    alone, beside = c["prices_alone"], c["prices_beside"]
    complete = beside["deliveries"] >= beside["expected"]
    return complete and (beside["p99_ms"] or 1e9) <= 2 * (alone["p99_ms"] or 0)


def targets(ours: dict, ref: dict) -> list[str]:
    checks = [
        (
            "CPU/delivery ≤ 1.3× reference (steady)",
            ours["steady"]["cpu_us_per_delivery"] <= 1.3 * ref["steady"]["cpu_us_per_delivery"],
        ),
        ("burst delivered completely", ours["burst"]["lost"] == 0),
        ("steady p99 ≤ 60 ms", (ours["steady"]["p99_ms"] or 1e9) <= 60),
        ("steady nothing lost", ours["steady"]["lost"] == 0),
        ("idle < 30 KB RSS/connection", ours["idle"]["rss_kb_per_connection"] < 30),
        ("idle CPU < 5% of a core (silent clients)", ours["idle"]["idle_cpu_percent"] < 5),
        ("idle CPU < 5% of a core (clients sending the 30 s heartbeat)", ours["idle"]["heartbeat_cpu_percent"] < 5),
        (
            "stopped reader raises others' p99 by ≤ 10 ms",
            (ours["slow"]["p99_ms"] or 1e9) - ours["steady"]["p99_ms_median"] <= 10,
        ),
        ("place_order p99 < 25 ms at 100/s, one process", commands_ok(ours["commands"])),
        ("place_order p99 < 25 ms at 100/s, two processes (one per core)", commands_ok(ours["commands_two"])),
        ("desks' price p99 while orders flow ≤ 2× its value without them", prices_unaffected(ours["commands"])),
    ]
    return [f"- [{'x' if ok else ' '}] {label}" for label, ok in checks]
