"""`bench/run`: build, start, measure, report. See bench/README.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import mock, report
from .gateways import Ctx, Direct, DirectCopilot, Gateway, LiteLLM, Nginx, Portkey, Tollgate
from .loadgen import Loadgen
from .procs import NPROC
from .scenarios import Bench, Settings
from .setup import (REPO, build, create_database, drop_database, loadavg, raise_fd_limit,
                    wait_for_quiet)

BENCH = REPO / "bench"
GROUPS = ("nginx", "tollgate", "portkey", "litellm")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("--smoke", action="store_true",
                    help="tollgate only (bare and features-on with SQLite), a few hundred "
                         "requests per scenario, checks results and errors, asserts no timings")
    ap.add_argument("--quick", action="store_true",
                    help="shorter measurements (~1/3 of the time, noisier numbers)")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help=f"comma-separated subset of {','.join(GROUPS)} (full run)")
    ap.add_argument("--no-install", action="store_true",
                    help="skip competitors that are not installed instead of installing them")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--profile", choices=("release", "debug"),
                    help="cargo profile [default: release; debug with --smoke]")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"),
                    help="PostgreSQL admin URL; a fresh database is created and dropped there")
    ap.add_argument("--max-load", type=float, default=0.5,
                    help="wait until the 1-minute load average is below this before measuring")
    ap.add_argument("--load-wait", type=float, default=600,
                    help="seconds to wait for --max-load at most (then measure and note the load)")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="only rewrite the .md and .svg from a results JSON of an earlier run")
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="results directory")
    return ap.parse_args(argv)














def main(argv: list[str]) -> int:
    if argv[:1] == ["--console"]:  # the admin console benchmark: its own options
        from console.crawl import main as console_main
        return console_main(argv[1:])
    if argv[:1] == ["--replicas"]:  # two replicas sharing Redis against one: its own options
        from .replicas import main as replicas_main
        return replicas_main(argv[1:])
    if argv[:1] == ["--ab"]:  # one tollgate build against another: its own options
        from .ab import main as ab_main
        return ab_main(argv[1:])
    args = parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        report.write(args.render.parent, data["date"], data)
        return 0
    started = time.monotonic()
    profile = args.profile or ("debug" if args.smoke else "release")
    raise_fd_limit()
    bins = build(profile)
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    work = BENCH / "work" / ("smoke" if args.smoke else "run")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pin = NPROC >= 2 and not args.no_pin and not args.smoke
    ctx = Ctx(repo=REPO, work=work, logs=logs, bins=bins,
              sut_cores="0" if pin else None, load_cores="1" if pin else None,
              mock_cores="1" if pin else None)
    settings = (Settings.smoke() if args.smoke else Settings.quick() if args.quick
                else Settings())
    groups = ["tollgate"] if args.smoke else [g.strip() for g in args.only.split(",") if g.strip()]
    skipped: dict[str, str] = {}

    if not args.smoke:
        installers = {"nginx": Nginx.install, "portkey": Portkey.install,
                      "litellm": LiteLLM.install}
        for g in groups:
            if g in installers:
                if args.no_install and not installed(g, ctx):
                    skipped[g] = "not installed and --no-install given"
                    continue
                print(f"==> installing {g} if missing", flush=True)
                why = installers[g](ctx)
                if why:
                    skipped[g] = why

    db_name = None
    if not args.smoke and "tollgate" in groups:
        db_name = f"tollgate_bench_{stamp}"
        try:
            ctx.pg_url = create_database(args.pg, db_name)
        except (OSError, subprocess.SubprocessError) as e:
            err = getattr(e, "stderr", "") or e
            ctx.notes.append(f"PostgreSQL at {args.pg} unusable ({str(err).strip()}): "
                             "features-on tollgate used SQLite instead")
            db_name = None

    mock_proc = mock.start(ctx)
    # The Copilot row's upstream: only where tollgate is measured.
    github_proc = mock.start_github(ctx) if "tollgate" in groups else None
    lg = Loadgen(bins / "tollgate-loadgen", ctx.load_cores, work)
    direct = Direct(ctx)
    direct.start()
    bench = Bench(ctx, lg, settings, direct)
    loads: dict[str, tuple[float, float]] = {}
    failures: dict[str, str] = {}
    try:
        load0 = (loadavg() if args.smoke
                 else wait_for_quiet(args.max_load, args.load_wait))
        print(f"==> direct (load average {load0:.2f})", flush=True)
        dv = direct.variants()[0]
        bench.throughput(dv)
        bench.sustained_rate(dv)
        if github_proc:
            direct_copilot = DirectCopilot(ctx)
            direct_copilot.start()
            bench.gateways[direct_copilot.key] = direct_copilot
            bench.throughput(direct_copilot.variants()[0])
        loads["direct"] = (load0, loadavg())
        for g in groups:
            if g in skipped:
                print(f"==> {g}: skipped: {skipped[g]}", flush=True)
                continue
            load0 = loadavg() if args.smoke else wait_for_quiet(args.max_load, args.load_wait)
            print(f"==> {g} (load average {load0:.2f})", flush=True)
            try:
                run_group(bench, ctx, g)
            except Exception as e:  # one competitor failing must not lose the others' numbers
                traceback.print_exc()
                failures[g] = f"{type(e).__name__}: {e}"
            loads[g] = (load0, loadavg())
        unpinned = [g for g in groups if g in UNPINNED_GROUPS and g not in skipped
                    and g not in failures]
        if unpinned and (pin or args.smoke):
            load0 = loadavg() if args.smoke else wait_for_quiet(args.max_load, args.load_wait)
            print(f"==> c=1 with nothing pinned: direct, {', '.join(unpinned)} "
                  f"(load average {load0:.2f})", flush=True)
            try:
                unpinned_part(bench, ctx, settings, unpinned)
            except Exception as e:  # the pinned figures stand without it
                traceback.print_exc()
                failures["unpinned"] = f"{type(e).__name__}: {e}"
            loads["unpinned"] = (load0, loadavg())
    finally:
        mock_proc.stop()
        if github_proc:
            github_proc.stop()
        if db_name:
            drop_database(args.pg, db_name)

    elapsed = time.monotonic() - started
    if args.smoke:
        return smoke_verdict(bench, failures)
    date = datetime.date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"date": date, "results": bench.results, "versions": bench_versions(bench),
            "skipped": skipped, "failures": failures, "loads": loads, "notes": ctx.notes,
            "settings": settings.__dict__, "elapsed_s": elapsed,
            "pinned": pin, "labels": bench_labels(bench)}
    (args.out / f"{date}.json").write_text(json.dumps(data, indent=1, default=str))
    report.write(args.out, date, data)
    print(f"==> wrote {args.out / (date + '.md')} and {args.out / (date + '-latency.svg')} "
          f"in {elapsed / 60:.1f} min", flush=True)
    return 0


def installed(group: str, ctx: Ctx) -> bool:
    return {"nginx": lambda: shutil.which("nginx") is not None,
            "portkey": lambda: (ctx.work / "node" / "node_modules" / "@portkey-ai").exists(),
            "litellm": lambda: (ctx.work / "venv" / "bin" / "litellm").exists()}[group]()


def group_gateways(ctx: Ctx, group: str) -> list[Gateway]:
    return {"nginx": lambda: [Nginx(ctx)], "portkey": lambda: [Portkey(ctx)],
            "litellm": lambda: [LiteLLM(ctx)],
            "tollgate": lambda: [Tollgate(ctx, features=False),
                                 Tollgate(ctx, features=True)]}[group]()


def usable_variants(bench: Bench, gws: list[Gateway], *, note: bool = True) -> list:
    variants = []
    for gw in gws:
        for v in gw.variants():
            if v.skipped:
                if note:
                    bench.results[v.key]["skipped"] = v.skipped
                    bench.note(f"{v.key}: skipped: {v.skipped}")
            else:
                variants.append(v)
    return variants


def run_group(bench: Bench, ctx: Ctx, group: str) -> None:
    gws = group_gateways(ctx, group)
    try:
        for gw in gws:
            bench.gateways[gw.key] = gw
            gw.start()
        variants = usable_variants(bench, gws)
        for gw in gws:
            bench.idle_rss(gw)
        for v in variants:
            if v.owns_process:
                bench.many_streams(v)
        bench.added_latency(variants)
        for v in variants:
            if v.runs("throughput"):
                bench.throughput(v)
            if not bench.s.requests and v.key == "tollgate-features":
                bench.profile(v)
        for v in variants:
            if v.runs("sustained"):
                bench.sustained_rate(v)
        bench.streaming(variants)
        bench.first_token(variants)
        for gw in gws:
            bench.final_rss(gw)
    finally:
        for gw in gws:
            gw.stop()
    for gw in gws:
        if isinstance(gw, Tollgate) and gw.features:
            bench.spend_rows(gw)


UNPINNED_GROUPS = ("nginx", "tollgate")


def unpinned_part(bench: Bench, ctx: Ctx, settings: Settings, groups: list[str]) -> None:
    """The c=1 latencies again with nothing pinned: a mock, the gateways and the load
    generator started afresh without `taskset` (so each sees both cores, as `--no-pin` runs
    them), all rows in one interleaved run with the direct path. Short: the pinned part has
    every other number. Results go to each row's `c1_unpinned`."""
    work = ctx.work / "unpinned"
    logs = ctx.logs / "unpinned"
    logs.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    uctx = Ctx(repo=ctx.repo, work=work, logs=logs, bins=ctx.bins, pg_url=ctx.pg_url)
    mock_proc = mock.start(uctx)
    gws: list[Gateway] = []
    try:
        direct = Direct(uctx)
        direct.start()
        ub = Bench(uctx, Loadgen(ctx.bins / "tollgate-loadgen", None, work), settings, direct)
        for g in groups:
            for gw in group_gateways(uctx, g):
                gws.append(gw)
                gw.start()
        ub.added_latency(usable_variants(ub, gws, note=False), field="c1_unpinned",
                         rounds=settings.c1_unpinned_rounds, secs=settings.c1_unpinned_secs)
    finally:
        for gw in gws:
            gw.stop()
        mock_proc.stop()
    for key, r in ub.results.items():
        if "c1_unpinned" in r:
            bench.results[key]["c1_unpinned"] = r["c1_unpinned"]


def bench_versions(bench: Bench) -> dict[str, str]:
    return {"direct": bench.direct.version} | {
        v.key: gw.version for gw in bench.gateways.values() for v in gw.variants()}


def bench_labels(bench: Bench) -> dict[str, str]:
    return {"direct": bench.direct.label} | {
        v.key: v.label for gw in bench.gateways.values() for v in gw.variants()}


def smoke_verdict(bench: Bench, failures: dict[str, str]) -> int:
    """Every scenario produced results and none had errors; timings are not judged."""
    checks: list[tuple[str, bool, str]] = []
    for g, why in failures.items():
        checks.append((f"{g} ran", False, why))
    for key, r in sorted(bench.results.items()):
        if "skipped" in r:
            if key == "tollgate-features-copilot":  # the stand-in is always there to serve it
                checks.append((f"{key} linked", False, r["skipped"]))
            else:
                print(f"SKIP {key}: {r['skipped']}")
            continue
        for scenario in ("c1", "c1_unpinned", "throughput", "stream", "ttft", "many_streams"):
            if scenario in r:
                m = r[scenario]
                n = m.get("n", m.get("ok", 0))
                checks.append((f"{key} {scenario}", n > 0 and m["errors"] == 0,
                               f"{n} ok, errors {m.get('error_kinds', m['errors'])}"))
        if "sustained" in r:
            for p in r["sustained"]["probes"]:
                checks.append((f"{key} rate {p['rate']:.0f}/s",
                               p["achieved"] > 0 and p["error_rate"] == 0,
                               f"achieved {p['achieved']:.0f}/s, errors {p['errors']}"))
        if "spend" in r:
            s = r["spend"]
            checks.append((f"{key} spend rows", s["rows"] is not None and s["lost"] == 0,
                           f"{s['rows']} rows for {s['sent']} requests"))
    for key in ("direct", "tollgate-bare", "tollgate-features"):
        if "c1_unpinned" not in bench.results.get(key, {}):
            checks.append((f"{key} c1_unpinned", False, "not measured"))
    expected = {"direct", "tollgate-bare", "tollgate-features", "direct-copilot",
                "tollgate-features-copilot"}
    for key in expected - set(bench.results):
        checks.append((f"{key} measured", False, "no results"))
    passed = sum(ok for _, ok, _ in checks)
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    print(f"bench smoke: {passed} passed, {len(checks) - passed} failed", flush=True)
    return 0 if passed == len(checks) and checks else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
