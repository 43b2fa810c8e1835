"""`bench/run --replicas`: what sharing limits through Redis costs per request.

One features-on replica without Redis (its limits count in its own process) against two
replicas of one deployment that share their counters through a Redis server this run starts
on a port of its own. Both sides use PostgreSQL (a database each) and a virtual key with an
rpm limit and a budget, so every request is admitted, counted and recorded. The two replicas
and Redis run on the gateway's core, as the one replica does: the throughput at concurrency 32
is then what the same CPU serves, and the CPU per request is the per-request cost. See
bench/README.md ("Replicas mode").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

from . import mock
from .setup import REPO, build, create_database, drop_database, raise_fd_limit, wait_for_quiet
from .gateways import Ctx, Direct, Gateway, Tollgate, Variant
from .loadgen import Loadgen, chat_target
from .procs import CLK_TCK, NPROC, Proc, free_port, http, postgres_cpu_ticks
from .scenarios import Bench, Settings, fmt

ONE, PAIR = "one-replica", "two-replicas-redis"
TARGET_RATIO = 1.10  # issue 18: per-request cost within 10% of one replica without Redis


def parse_args(argv: list[str], bench_dir: Path) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run --replicas", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="shorter measurements (noisier)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="throughput rounds, each measuring both sides in turn [3]")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"),
                    help="PostgreSQL admin URL; two fresh databases are made and dropped there")
    ap.add_argument("--max-load", type=float, default=0.5)
    ap.add_argument("--load-wait", type=float, default=600)
    ap.add_argument("--out", type=Path, default=bench_dir / "results")
    return ap.parse_args(argv)


class Redis:
    """A Redis server of the run's own (never the machine's), keeping nothing on disk."""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.port = free_port()
        self.proc: Proc | None = None
        self.url = f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir",
                                   str(self.ctx.work)],
                         self.ctx.logs, cores=self.ctx.sut_cores)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on {self.port} did not answer PING; "
                           f"see {self.proc.log_path}")

    def command(self, *words: str) -> str | None:
        """One inline command; the first line of the answer (None when nothing answers)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall((" ".join(words) + "\r\n").encode())
                return s.recv(4096).decode("utf-8", "replace").split("\r\n", 1)[0]
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class Pair(Gateway):
    """Two replicas seen as one row: the load is spread over both, their CPU is summed."""
    key, label = PAIR, "two replicas + Redis (shared counters)"

    def __init__(self, ctx: Ctx, a: Tollgate, b: Tollgate):
        super().__init__(ctx)
        self.a, self.b = a, b

    def start(self) -> None:
        self.procs = self.a.procs + self.b.procs
        self.base, self.api_key = self.a.base, self.a.api_key
        self.version = self.a.version

    def variants(self) -> list[Variant]:
        return [SpreadVariant(self.key, self.label, self, spread=[self.b.base])]


class SpreadVariant(Variant):
    """Connections alternate between the replicas, as behind a round-robin load balancer."""

    def __init__(self, key: str, label: str, gateway: Gateway, spread: list[str]):
        super().__init__(key, label, gateway)
        self.spread = spread

    def target(self, stream: bool = False) -> dict:
        return chat_target(self.key, self.gateway.base, self.gateway.headers(), stream) | {
            "spread": self.spread}


def shared_state(gw: Tollgate) -> tuple[str | None, float | None]:
    """The replica's view of Redis: readiness's `redis` field and its error counter."""
    _, ready = http("GET", gw.base + "/health/readiness")
    status, text = http("GET", gw.base + "/metrics",
                        headers={"authorization": f"Bearer {gw.master}"})
    errors = None
    if status == 200 and isinstance(text, str):
        errors = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("tollgate_redis_errors_total"))
    return (ready.get("redis") if isinstance(ready, dict) else None), errors


def throughput(bench: Bench, v: Variant, redis: Redis | None) -> dict:
    """Closed loop at c=32; CPU of the replicas, of Redis and of PostgreSQL per 10k."""
    mock.reply(bench.ctx)
    s = bench.s
    procs = v.gateway.procs
    rproc = [redis.proc] if redis and redis.proc else []
    t0 = sum(p.cpu_ticks() for p in procs)
    r0 = sum(p.cpu_ticks() for p in rproc)
    pg0, w0 = postgres_cpu_ticks(), time.monotonic()
    r = bench.run([v], concurrency=s.tp_concurrency, warmup=s.tp_warmup,
                  duration=s.tp_secs)[v.key]
    wall = time.monotonic() - w0
    sent = max(r["sent_including_warmup"], 1)
    per10k = 10_000 / sent / CLK_TCK
    out = {"rps": r["achieved_rps"], "p50": r["latency_ms"].get("p50"),
           "p99": r["latency_ms"].get("p99"), "errors": r["error_count"],
           "error_kinds": r["errors"], "n": r["ok"],
           "cpu_s_per_10k": (sum(p.cpu_ticks() for p in procs) - t0) * per10k,
           "redis_cpu_s_per_10k": (sum(p.cpu_ticks() for p in rproc) - r0) * per10k,
           "pg_cpu_s_per_10k": (postgres_cpu_ticks() - pg0) * per10k}
    out["tier_cpu_s_per_10k"] = out["cpu_s_per_10k"] + out["redis_cpu_s_per_10k"]
    out["cpu_util"] = out["tier_cpu_s_per_10k"] * sent / 10_000 / wall
    bench.note(f"{v.key}: {out['rps']:.0f} req/s at c={s.tp_concurrency}, errors "
               f"{out['errors']}, CPU {out['cpu_s_per_10k']:.2f} s/10k + Redis "
               f"{out['redis_cpu_s_per_10k']:.2f} ({out['cpu_util']:.0%} of a core)")
    return out


def median_of(runs: list[dict]) -> dict:
    """Per field, the median over the rounds (errors summed)."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]
           if isinstance(runs[0][k], (int, float)) and k not in ("errors", "n")}
    out["errors"] = sum(r["errors"] for r in runs)
    out["n"] = sum(r["n"] for r in runs)
    out["rounds"] = runs
    return out


def spend_rows(url: str) -> int | None:
    out = subprocess.run(["psql", url, "-XtAq", "-c", "select count(*) from spend_logs"],
                         capture_output=True, text=True, check=False, timeout=60)
    return int(out.stdout.strip()) if out.returncode == 0 else None


def main(argv: list[str]) -> int:
    repo = REPO
    bench_dir = repo / "bench"
    args = parse_args(argv, bench_dir)
    started = time.monotonic()
    raise_fd_limit()
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    bins = (target if target.is_absolute() else repo / target) / "release"
    if not args.no_build:
        bins = build("release")
    work = bench_dir / "work" / "replicas"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pin = NPROC >= 2 and not args.no_pin
    ctx = Ctx(repo=repo, work=work, logs=logs, bins=bins, sut_cores="0" if pin else None,
              load_cores="1" if pin else None, mock_cores="1" if pin else None)
    settings = Settings.quick() if args.quick else Settings()
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    dbs = {side: f"tollgate_replicas_{stamp}_{n}" for n, side in ((1, ONE), (2, PAIR))}
    urls = {side: create_database(args.pg, name) for side, name in dbs.items()}
    mock_proc = mock.start(ctx)
    direct = Direct(ctx)
    direct.start()
    bench = Bench(ctx, Loadgen(bins / "tollgate-loadgen", ctx.load_cores, work), settings,
                  direct)
    redis = Redis(ctx)
    gws: list[Gateway] = []
    sent_before: dict[str, int] = {}
    try:
        redis.start()
        one = Tollgate(ctx, True, key=ONE, label="one replica, no Redis (counters in-process)",
                       pg_url=urls[ONE])
        a = Tollgate(ctx, True, key=PAIR + "-a", label="replica A", pg_url=urls[PAIR],
                     env={"REDIS_URL": redis.url})
        for gw in (one, a):
            gw.start()
            gws.append(gw)
        b = Tollgate(ctx, True, key=PAIR + "-b", label="replica B", pg_url=urls[PAIR],
                     env={"REDIS_URL": redis.url}, master=a.master, api_key=a.api_key)
        b.start()
        gws.append(b)
        pair = Pair(ctx, a, b)
        pair.start()
        for gw in (one, pair):
            bench.gateways[gw.key] = gw
        deadline = time.monotonic() + 15  # the first heartbeat connects (every 2 s)
        while True:
            states = {gw.key: shared_state(gw) for gw in (one, a, b)}
            if all(states[gw.key][0] == "connected" for gw in (a, b)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas do not share counters through Redis: {states}")
            time.sleep(0.5)
        bench.note(f"redis as the replicas see it (readiness, errors): {states}")
        v_one, v_pair = one.variants()[0], pair.variants()[0]

        load = wait_for_quiet(args.max_load, args.load_wait)
        bench.note(f"load average before measuring: {load:.2f}")
        # Concurrency 1, interleaved with the direct path; the pair's connection is replica A's.
        bench.added_latency([v_one, v_pair])
        runs: dict[str, list[dict]] = {ONE: [], PAIR: []}
        for rnd in range(max(args.rounds, 1)):
            order = [(v_one, None), (v_pair, redis)]
            for v, r in order[rnd % 2:] + order[:rnd % 2]:
                runs[v.key].append(throughput(bench, v, r))
        for key, rs in runs.items():
            bench.results[key]["throughput"] = median_of(rs)
        end_states = {gw.key: shared_state(gw) for gw in (a, b)}
        bench.note(f"redis at the end: {end_states}")
        bench.results[PAIR]["redis_errors"] = sum(e or 0 for _, e in end_states.values())
        bench.results[PAIR]["redis_keys"] = (redis.command("DBSIZE") or "").lstrip(":")
        sent_before = dict(bench.sent)
        # The start-up probe of /v1/messages went through replica A and the one replica.
        sent_before[ONE] = sent_before.get(ONE, 0) + one.probes_proxied
        sent_before[PAIR] = sent_before.get(PAIR, 0) + a.probes_proxied
        loads_end = Path("/proc/loadavg").read_text().split()[0]
    finally:
        for gw in reversed(gws):
            gw.stop()
        redis.stop()
        mock_proc.stop()
    # After shutdown (which drains the spend writers): rows against requests sent.
    for side, url in urls.items():
        sent = sent_before.get(side, 0)
        rows = spend_rows(url)
        bench.results[side]["spend"] = {"sent": sent, "rows": rows,
                                        "lost": None if rows is None else sent - rows}
        bench.note(f"{side}: {rows} spend rows for {sent} requests sent")
        drop_database(args.pg, dbs[side])

    date = datetime.date.today().isoformat()
    data = {"date": date, "results": bench.results, "settings": settings.__dict__,
            "rounds": args.rounds, "pinned": pin, "elapsed_s": time.monotonic() - started,
            "load_start": load, "load_end": float(loads_end), "notes": bench.log,
            "version": one.version}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{date}-replicas.json").write_text(json.dumps(data, indent=1, default=str))
    md = report(data)
    (args.out / f"{date}-replicas.md").write_text(md)
    print(md)
    print(f"==> wrote {args.out / (date + '-replicas.md')}", flush=True)
    failed = [k for k in (ONE, PAIR)
              if bench.results[k]["throughput"]["errors"] or bench.results[k]["spend"]["lost"]]
    return 1 if failed else 0


def report(data: dict) -> str:
    res, s = data["results"], data["settings"]
    one, pair = res[ONE], res[PAIR]
    t1, t2 = one["throughput"], pair["throughput"]

    def ratio(a, b):
        return "—" if a is None or not b else f"{a / b:.2f}×"

    lines = [f"# Two replicas sharing counters through Redis, {data['date']}", "",
             f"`bench/run --replicas` on {NPROC} cores, {data['elapsed_s'] / 60:.1f} min, "
             f"{data['version']}. Load average {data['load_start']:.2f} before measuring, "
             f"{data['load_end']:.2f} at the end.", "",
             ("Layout: the replicas and Redis pinned to core 0 (the same CPU as the one "
              "replica), the load generator and the mock upstream to core 1; PostgreSQL "
              "unpinned." if data["pinned"] else "Layout: nothing pinned."), "",
             "Both sides: PostgreSQL (a database each), a virtual key with `rpm_limit` 10⁹ "
             "and `max_budget` 10⁹, the upstream answering at once. The pair's connections "
             "alternate between replica A and replica B; at concurrency 1 its one connection "
             "is replica A's. Throughput: the median of "
             f"{data['rounds']} rounds of {s['tp_secs']:.0f} s each (after "
             f"{s['tp_warmup']:.0f} s of warm-up), the two sides in turn.", "",
             "| | req/s c=32 | tollgate CPU s/10k | Redis CPU s/10k | tier CPU s/10k | "
             "PostgreSQL CPU s/10k | c=1 added p50 | c=1 added p99 | errors | spend rows |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, label in ((ONE, "one replica, counters in-process"),
                       (PAIR, "two replicas + Redis")):
        r, t, c = res[key], res[key]["throughput"], res[key].get("c1", {})
        sp = r.get("spend", {})
        lines.append(
            f"| {label} | {t['rps']:,.0f} | {t['cpu_s_per_10k']:.2f} | "
            f"{t['redis_cpu_s_per_10k']:.2f} | {t['tier_cpu_s_per_10k']:.2f} | "
            f"{t['pg_cpu_s_per_10k']:.2f} | {fmt(c.get('added_p50'))} ms | "
            f"{fmt(c.get('added_p99'))} ms | {t['errors'] + c.get('errors', 0)} | "
            f"{sp.get('rows')} / {sp.get('sent')} |")
    cost = t2["tier_cpu_s_per_10k"] / t1["tier_cpu_s_per_10k"]
    verdict = "met" if cost <= TARGET_RATIO else "missed"
    lines += ["",
              f"- Per-request cost (replicas + Redis CPU per request), pair ÷ one: "
              f"**{cost:.2f}×** (target ≤ {TARGET_RATIO:.2f}×: {verdict}).",
              f"- Throughput on the same core, pair ÷ one: {ratio(t2['rps'], t1['rps'])}.",
              f"- Redis errors seen by the replicas during the run: {pair.get('redis_errors')}; "
              f"keys in Redis at the end: {pair.get('redis_keys')}.",
              "", "Rounds (req/s, tier CPU s/10k):", ""]
    for key in (ONE, PAIR):
        rs = res[key]["throughput"]["rounds"]
        lines.append(f"- {key}: " + ", ".join(
            f"{r['rps']:,.0f} / {r['tier_cpu_s_per_10k']:.2f}" for r in rs))
    return "\n".join(lines) + "\n"
