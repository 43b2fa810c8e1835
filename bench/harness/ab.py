"""`bench/run --ab BASELINE`: one tollgate build against another, side by side in one run.

A change to the hot path lands with a figure measured under the same conditions as its
baseline. This mode starts two features-on tollgates at once — the baseline binary (a
directory holding `tollgate`, e.g. a release build of the previous commit) and the current
build — each on a fresh PostgreSQL database of its own with its own virtual key (`rpm_limit`
and `max_budget` set, so every request is admitted, counted and recorded), both against the
same mock upstream answering at once. Then:

- concurrency 1: interleaved rounds with the direct path (order rotated every round), added
  latency per percentile (p50, p99, p99.9);
- concurrency 32: alternating rounds, each side measured in turn, the median req/s.

Both sides run on the gateway's core (core 0) and the load generator and the mock on core 1,
unless `--no-pin`. See bench/README.md ("A/B mode").
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import statistics
import time
from pathlib import Path

from . import mock
from .gateways import Ctx, Direct, Tollgate
from .loadgen import Loadgen
from .procs import NPROC
from .scenarios import Bench, Settings, fmt, lat
from .setup import REPO, build, create_database, drop_database, raise_fd_limit, wait_for_quiet

BASE, NEW = "baseline", "candidate"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run --ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", type=Path,
                    help="directory holding the baseline build's `tollgate` binary")
    ap.add_argument("--rounds", type=int, default=6, help="rounds per measurement [6]")
    ap.add_argument("--c1-secs", type=float, default=1.5, help="seconds per c=1 round [1.5]")
    ap.add_argument("--tp-secs", type=float, default=2.0, help="seconds per c=32 round [2]")
    ap.add_argument("--bare", action="store_true",
                    help="no master key, SQLite: the bare configuration instead of features-on")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--max-load", type=float, default=0.5)
    ap.add_argument("--load-wait", type=float, default=120)
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    if not (args.baseline / "tollgate").is_file():
        raise SystemExit(f"bench/run --ab: no `tollgate` binary in {args.baseline}")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    bins = (target if target.is_absolute() else REPO / target) / "release"
    if not args.no_build:
        bins = build("release")
    work = REPO / "bench" / "work" / "ab"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pin = NPROC >= 2 and not args.no_pin
    ctx = Ctx(repo=REPO, work=work, logs=logs, bins=bins, sut_cores="0" if pin else None,
              load_cores="1" if pin else None, mock_cores="1" if pin else None)
    settings = dataclasses.replace(Settings(), c1_rounds=args.rounds, c1_secs=args.c1_secs)
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    dbs = {} if args.bare else {side: f"tollgate_ab_{stamp}_{side}" for side in (BASE, NEW)}
    urls = {side: create_database(args.pg, name) for side, name in dbs.items()}
    mock_proc = mock.start(ctx)
    direct = Direct(ctx)
    direct.start()
    bench = Bench(ctx, Loadgen(bins / "tollgate-loadgen", ctx.load_cores, work), settings,
                  direct)
    sides: list[Tollgate] = []
    try:
        for side, side_bins in ((BASE, args.baseline.resolve()), (NEW, bins)):
            side_ctx = dataclasses.replace(ctx, bins=side_bins, work=work / side)
            side_ctx.work.mkdir(parents=True, exist_ok=True)
            gw = Tollgate(side_ctx, not args.bare, key=side, label=side,
                          pg_url=urls.get(side))
            gw.start()
            sides.append(gw)
        variants = [gw.variants()[0] for gw in sides]
        load = wait_for_quiet(args.max_load, args.load_wait)
        bench.note(f"load average before measuring: {load:.2f}")
        mock.reply(ctx)
        c1 = bench.run(variants, with_direct=True, concurrency=1, rounds=args.rounds,
                       warmup=settings.c1_warmup, duration=args.c1_secs)
        tp: dict[str, list[float]] = {BASE: [], NEW: []}
        errors = {BASE: 0, NEW: 0}
        for rnd in range(args.rounds):
            order = variants[rnd % 2:] + variants[:rnd % 2]
            for v in order:
                r = bench.run([v], concurrency=settings.tp_concurrency, warmup=1.0,
                              duration=args.tp_secs)[v.key]
                tp[v.key].append(r["achieved_rps"])
                errors[v.key] += r["error_count"]
        end_load = Path("/proc/loadavg").read_text().split()[0]
    finally:
        for gw in reversed(sides):
            gw.stop()
        mock_proc.stop()
        for name in dbs.values():
            drop_database(args.pg, name)

    d = lat(c1["direct"])
    print(f"\nA/B, one run: {'bare (SQLite)' if args.bare else 'features-on (PostgreSQL)'}, "
          f"{'pinned' if pin else 'unpinned'}; load {load:.2f} → {end_load}; "
          f"c=1 {args.rounds} interleaved rounds × {args.c1_secs} s, "
          f"c=32 {args.rounds} alternating rounds × {args.tp_secs} s\n")
    print("| | c=32 req/s (median) | rounds | c=1 added p50 / p99 / p99.9 ms | errors |")
    print("|---|---|---|---|---|")
    for v in variants:
        m = lat(c1[v.key])
        added = " / ".join(fmt(m[p] - d[p]) if m.get(p) is not None and d.get(p) is not None
                           else "—" for p in ("p50", "p99", "p999"))
        rounds = ", ".join(f"{x:,.0f}" for x in tp[v.key])
        print(f"| {v.key} | {statistics.median(tp[v.key]):,.0f} | {rounds} | {added} | "
              f"{errors[v.key] + c1[v.key]['error_count']} |")
    ratio = statistics.median(tp[NEW]) / statistics.median(tp[BASE])
    print(f"\ncandidate ÷ baseline req/s: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
