"""The measurements, each a short load-generator run against one or more variants."""

from __future__ import annotations

import math
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass

from . import mock
from .gateways import Ctx, Direct, Gateway, Tollgate, Variant
from .loadgen import Loadgen
from .procs import CLK_TCK, RssSampler, postgres_cpu_ticks


@dataclass
class Settings:
    """Durations and sizes; `smoke()` shrinks them to a few hundred requests each."""
    c1_rounds: int = 6
    c1_warmup: float = 0.3
    c1_secs: float = 1.5
    tp_concurrency: int = 32
    tp_warmup: float = 2.0
    tp_secs: float = 8.0
    upstream_delay_ms: int = 20
    p99_limit_ms: float = 50.0
    error_limit: float = 0.001
    sustain_start: float = 50.0
    sustain_max: float = 51200.0
    sustain_bisect: int = 3
    sustain_min: float = 5.0  # halve down to this when even the starting rate fails
    sustain_retry: bool = True  # confirm a failing probe with a second one
    probe_warmup: float = 1.0
    probe_secs: float = 3.0
    stream_concurrency: int = 16
    stream_rounds: int = 4
    stream_warmup: float = 0.7
    stream_secs: float = 3.0
    chunk_interval_ms: int = 10
    rss_streams: int = 1000
    rss_chunk_interval_ms: int = 100
    rss_secs: float = 8.0
    c1_unpinned_rounds: int = 3  # the short part with nothing pinned
    c1_unpinned_secs: float = 1.5
    ttft_concurrency: int = 16
    ttft_chunks: int = 4  # short streams: many first events in little time
    ttft_rounds: int = 4
    ttft_warmup: float = 0.5
    ttft_secs: float = 2.5
    ttft_min_samples: int = 1000  # a p99 that rests on at least this many first events
    requests: int | None = None  # smoke: a request count per run instead of durations
    stream_requests: int | None = None  # smoke: streams per target

    @classmethod
    def quick(cls) -> "Settings":
        return cls(c1_rounds=3, c1_secs=0.7, tp_warmup=1.0, tp_secs=3.0, sustain_bisect=1,
                   probe_warmup=0.5, probe_secs=1.5, stream_rounds=2, stream_secs=1.5,
                   rss_secs=4.0, c1_unpinned_rounds=2, c1_unpinned_secs=0.7, ttft_rounds=3)

    @classmethod
    def smoke(cls) -> "Settings":
        return cls(c1_rounds=1, tp_concurrency=8, sustain_start=200.0, sustain_max=200.0,
                   sustain_bisect=0, sustain_min=200.0, sustain_retry=False,
                   stream_concurrency=4, stream_rounds=1, chunk_interval_ms=1, rss_streams=50,
                   rss_chunk_interval_ms=5, requests=300, stream_requests=40,
                   c1_unpinned_rounds=1, ttft_concurrency=4, ttft_rounds=1, ttft_min_samples=0)


def lat(result: dict, field: str = "latency_ms") -> dict:
    return result.get(field) or {}


class Bench:
    def __init__(self, ctx: Ctx, lg: Loadgen, settings: Settings, direct: Direct):
        self.ctx = ctx
        self.lg = lg
        self.s = settings
        self.direct = direct
        self.results: dict[str, dict] = defaultdict(dict)
        self.sent: dict[str, int] = defaultdict(int)  # gateway key -> requests that reached it
        self.gateways: dict[str, Gateway] = {}  # started ones, by key
        self.log: list[str] = []

    # -- running ----------------------------------------------------------------------------

    def run(self, variants: list[Variant], *, with_direct: bool = False, stream: bool = False,
            requests: int | None = None, **kw) -> dict[str, dict]:
        targets = [v.target(stream) for v in variants]
        owners = {v.key: v.gateway.key for v in variants}
        if with_direct:
            targets.insert(0, self.direct.variants()[0].target(stream))
            owners["direct"] = "direct"
        if requests is None:
            requests = self.s.requests
        if requests is not None:
            kw.update(warmup=0.0, requests=requests)
        results = self.lg.run(targets, **kw)
        for name, r in results.items():
            self.sent[owners[name]] += r["sent_including_warmup"]
        return results

    def note(self, text: str) -> None:
        print(f"    {text}", flush=True)
        self.log.append(text)

    # -- measurements -----------------------------------------------------------------------

    def idle_rss(self, gw: Gateway) -> None:
        """RSS after start-up and 50 requests, then a second of idleness."""
        if not gw.procs:
            return
        mock.reply(self.ctx)
        self.run(gw.variants()[:1], concurrency=1, requests=50)
        time.sleep(1.0)
        mb = gw.procs[0].rss_kb() / 1024
        self.results[gw.key]["idle_rss_mb"] = mb
        self.note(f"{gw.key}: idle RSS {mb:.1f} MB")

    def added_latency(self, variants: list[Variant], *, field: str = "c1",
                      rounds: int | None = None, secs: float | None = None) -> None:
        """Concurrency 1, interleaved rounds with the direct path; added = variant − direct,
        per percentile. `field` names the result (`c1_unpinned` for the unpinned layout)."""
        mock.reply(self.ctx)
        s = self.s
        variants = [v for v in variants if v.runs("c1")]
        res = self.run(variants, with_direct=True, concurrency=1,
                       rounds=rounds or s.c1_rounds, warmup=s.c1_warmup,
                       duration=secs or s.c1_secs)
        d = lat(res["direct"])
        for v in variants:
            r = res[v.key]
            m = lat(r)
            out = {"p50": m.get("p50"), "p99": m.get("p99"), "p999": m.get("p999"),
                   "direct_p50": d.get("p50"), "direct_p99": d.get("p99"),
                   "direct_p999": d.get("p999"), "n": r["ok"], "errors": r["error_count"],
                   "error_kinds": r["errors"]}
            if m.get("p50") is not None and d.get("p50") is not None:
                for q in ("p50", "p99", "p999"):
                    out[f"added_{q}"] = m[q] - d[q]
            self.results[v.key][field] = out
            self.results["direct"].setdefault(field, {"p50": d.get("p50"), "p99": d.get("p99"),
                                                      "p999": d.get("p999"),
                                                      "n": res["direct"]["ok"],
                                                      "errors": res["direct"]["error_count"]})
            self.note(f"{v.key}: {field} p50 {fmt(m.get('p50'))} ms (direct "
                      f"{fmt(d.get('p50'))}), p99 {fmt(m.get('p99'))} (direct "
                      f"{fmt(d.get('p99'))}), p99.9 {fmt(m.get('p999'))} (direct "
                      f"{fmt(d.get('p999'))}), {r['ok']} samples, errors {r['error_count']}")

    def throughput(self, v: Variant) -> None:
        """Closed loop at concurrency 32, upstream answering at once; CPU from /proc."""
        mock.reply(self.ctx)
        s = self.s
        procs = v.gateway.procs
        pg = self.ctx.pg_url is not None and isinstance(v.gateway, Tollgate) and v.gateway.features
        t0, pg0, w0 = sum(p.cpu_ticks() for p in procs), postgres_cpu_ticks() if pg else 0, \
            time.monotonic()
        r = self.run([v], concurrency=s.tp_concurrency, warmup=s.tp_warmup,
                     duration=s.tp_secs)[v.key]
        wall = time.monotonic() - w0
        cpu = (sum(p.cpu_ticks() for p in procs) - t0) / CLK_TCK
        sent = max(r["sent_including_warmup"], 1)
        out = {"rps": r["achieved_rps"], "p50": lat(r).get("p50"), "p99": lat(r).get("p99"),
               "errors": r["error_count"], "error_kinds": r["errors"], "n": r["ok"]}
        if procs:
            out["cpu_s_per_10k"] = cpu / sent * 10_000
            out["cpu_util"] = cpu / wall
        if pg:
            out["pg_cpu_s_per_10k"] = (postgres_cpu_ticks() - pg0) / CLK_TCK / sent * 10_000
        self.results[v.key]["throughput"] = out
        cpu_txt = f", CPU {out['cpu_s_per_10k']:.2f} s/10k ({out['cpu_util']:.0%} of a core)" \
            if procs else ""
        self.note(f"{v.key}: {r['achieved_rps']:.0f} req/s at c={s.tp_concurrency}, "
                  f"errors {r['error_count']}{cpu_txt}")

    def probe(self, v: Variant, rate: float) -> dict:
        s = self.s
        procs = v.gateway.procs
        t0, w0 = sum(p.cpu_ticks() for p in procs), time.monotonic()
        r = self.run([v], rate=rate, warmup=s.probe_warmup, duration=s.probe_secs,
                     timeout=10.0)[v.key]
        wall = time.monotonic() - w0
        cpu = (sum(p.cpu_ticks() for p in procs) - t0) / CLK_TCK
        p99 = lat(r).get("p99")
        ok = (r["ok"] > 0 and p99 is not None and p99 < s.p99_limit_ms
              and r["error_rate"] < s.error_limit)
        point = {"rate": rate, "p50": lat(r).get("p50"), "p99": p99,
                 "error_rate": r["error_rate"], "errors": r["errors"],
                 "achieved": r["achieved_rps"], "pass": ok,
                 "cpu_util": cpu / wall if procs else None}
        self.note(f"{v.key}: {rate:.0f}/s → p99 {fmt(p99)} ms, errors {r['error_rate']:.2%}"
                  f"{'' if not procs else f', CPU {cpu / wall:.0%}'} {'ok' if ok else 'FAIL'}")
        return point

    def checked_probe(self, v: Variant, rate: float) -> dict:
        """A probe whose failure is confirmed by a second one at the same rate: at low rates
        a probe has only a few hundred samples, and one scheduling hiccup of the machine
        (not of the gateway) is enough to push its p99 over the limit. A gateway that used its
        whole core is not given a second chance: that failure is its own."""
        p = self.probe(v, rate)
        saturated = p["cpu_util"] is not None and p["cpu_util"] >= 0.97
        if p["pass"] or not self.s.sustain_retry or saturated:
            return p
        again = self.probe(v, rate)
        again["first_attempt_p99"] = p["p99"]
        return again

    def sustained_rate(self, v: Variant) -> None:
        """Highest fixed rate with p99 < 50 ms and < 0.1% errors, 20 ms upstream delay:
        doubling from a low rate, then a few bisection steps (geometric) between the last
        pass and the first failure."""
        s = self.s
        mock.reply(self.ctx, delay_ms=s.upstream_delay_ms)
        probes = []
        rate, best, fail = s.sustain_start, None, None
        while rate <= s.sustain_max:
            p = self.checked_probe(v, rate)
            probes.append(p)
            if not p["pass"]:
                fail = rate
                break
            best = rate
            rate *= 2
        if best is None and fail is not None:
            # Below the starting rate: halve until one passes (or give up).
            rate = fail / 2
            while rate >= s.sustain_min and best is None:
                p = self.checked_probe(v, rate)
                probes.append(p)
                if p["pass"]:
                    best = rate
                else:
                    fail = rate
                    rate /= 2
        for _ in range(s.sustain_bisect if best is not None and fail is not None else 0):
            mid = round_rate(math.sqrt(best * fail))
            if mid <= best or mid >= fail:
                break
            p = self.checked_probe(v, mid)
            probes.append(p)
            if p["pass"]:
                best = mid
            else:
                fail = mid
        passing = [p for p in probes if p["pass"] and p["rate"] == best]
        failing = [p for p in probes if not p["pass"] and p["rate"] == fail]
        self.results[v.key]["sustained"] = {
            "rate": best, "first_fail": fail, "probes": sorted(probes, key=lambda p: p["rate"]),
            "cpu_util_at_rate": passing[0]["cpu_util"] if passing else None,
            "cpu_util_at_fail": failing[0]["cpu_util"] if failing else None,
            "capped": fail is None,
        }

    def streaming(self, variants: list[Variant]) -> None:
        """64 deltas 10 ms apart; time to first event and gaps, interleaved with direct."""
        s = self.s
        mock.reply(self.ctx, chunk_interval_ms=s.chunk_interval_ms, stream_text=True)
        variants = [v for v in variants if v.runs("stream")]
        res = self.run(variants, with_direct=True, stream=True, requests=s.stream_requests,
                       concurrency=s.stream_concurrency, rounds=s.stream_rounds,
                       warmup=s.stream_warmup, duration=s.stream_secs)
        d = res["direct"]
        self.results["direct"].setdefault("stream", stream_numbers(d, None))
        for v in variants:
            out = stream_numbers(res[v.key], d)
            self.results[v.key]["stream"] = out
            self.note(f"{v.key}: first event p99 {fmt(out['ttft_p99'])} ms "
                      f"(+{fmt(out.get('added_ttft_p99'))}), gap p50/p99 {fmt(out['gap_p50'])}/"
                      f"{fmt(out['gap_p99'])} ms, errors {out['errors']}")

    def first_token(self, variants: list[Variant]) -> None:
        """Time to the first event over many short streams (4 deltas 10 ms apart, 16 at
        once), interleaved with direct, so that each p99 rests on at least
        `ttft_min_samples` first events; the sample count is kept with the figures."""
        s = self.s
        mock.reply(self.ctx, chunk_interval_ms=s.chunk_interval_ms, stream_text=True,
                   chunks=s.ttft_chunks)
        variants = [v for v in variants if v.runs("ttft")]
        res = self.run(variants, with_direct=True, stream=True, requests=s.stream_requests,
                       concurrency=s.ttft_concurrency, rounds=s.ttft_rounds,
                       warmup=s.ttft_warmup, duration=s.ttft_secs)
        d = res["direct"]
        self.results["direct"].setdefault("ttft", ttft_numbers(d, None))
        for v in variants:
            out = ttft_numbers(res[v.key], d)
            self.results[v.key]["ttft"] = out
            self.note(f"{v.key}: first event p50/p99 {fmt(out['p50'])}/{fmt(out['p99'])} ms "
                      f"(added {fmt(out.get('added_p99'))} at p99) over {out['samples']} "
                      f"streams (direct {out['direct_samples']}), errors {out['errors']}")

    def many_streams(self, v: Variant) -> None:
        """Peak RSS while 1,000 streams (64 deltas, 100 ms apart) are open at once: exactly
        that many, all started together, on a process that has served little else yet."""
        s = self.s
        mock.reply(self.ctx, chunk_interval_ms=s.rss_chunk_interval_ms, stream_text=True)
        before = sum(p.rss_kb() for p in v.gateway.procs) / 1024
        with RssSampler(v.gateway.procs) as sampler:
            r = self.run([v], stream=True, concurrency=s.rss_streams, requests=s.rss_streams,
                         timeout=120.0)[v.key]
        time.sleep(2.0)
        after = sum(p.rss_kb() for p in v.gateway.procs) / 1024
        out = {"peak_rss_mb": sampler.peak_kb / 1024, "before_mb": before, "after_mb": after,
               "streams": s.rss_streams, "ok": r["ok"], "errors": r["error_count"],
               "error_kinds": r["errors"]}
        self.results[v.key]["many_streams"] = out
        self.note(f"{v.key}: {s.rss_streams} streams → peak RSS {out['peak_rss_mb']:.1f} MB "
                  f"(before {before:.1f}, 2 s after {after:.1f}), {r['ok']} ok, "
                  f"errors {r['errors']}")

    def final_rss(self, gw: Gateway) -> None:
        """RSS at the end of the gateway's part, after every request it served."""
        if gw.procs:
            self.results[gw.key]["final_rss_mb"] = gw.procs[0].rss_kb() / 1024
            self.results[gw.key]["served"] = self.sent[gw.key]

    def profile(self, v: Variant, secs: float = 5.0) -> None:
        """A flat CPU profile (`perf record`, self time per symbol) of the gateway under the
        throughput load, in a run of its own so that perf's overhead touches no number."""
        if not shutil.which("perf") or not v.gateway.procs:
            return
        mock.reply(self.ctx)
        data = self.ctx.work / f"perf-{v.key}.data"
        pids = ",".join(str(p) for p in v.gateway.procs[0].pids())
        rec = subprocess.Popen(["perf", "record", "-F", "999", "-p", pids, "-o", str(data)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.run([v], concurrency=self.s.tp_concurrency, warmup=0.5, duration=secs)
        finally:
            rec.send_signal(signal.SIGINT)
            rec.wait(30)
        top = []
        views = ((["--sort", "dso"], "2"), (["--sort", "dso,symbol"], "0.8"),
                 (["--dsos", "tollgate", "--sort", "symbol"], "0.3"))
        for sort, limit in views:
            out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                                  *sort, "--percent-limit", limit],
                                 capture_output=True, text=True, check=False)
            lines = [re.sub(r"(\s+-)+\s*$", "", line).rstrip()
                     for line in out.stdout.splitlines()
                     if line.strip() and not line.startswith("#")]
            top += lines[:25] + [""]
        self.results[v.key]["profile"] = top
        self.note(f"{v.key}: profile taken ({len(top)} symbols ≥ 1%)")

    def spend_rows(self, gw: Tollgate) -> None:
        """After shutdown (which drains the spend writer): rows written vs requests sent."""
        sent = self.sent[gw.key] + gw.probes_proxied
        rows = None
        try:
            if self.ctx.pg_url:
                out = subprocess.run(["psql", self.ctx.pg_url, "-XtAq", "-c",
                                      "select count(*) from spend_logs"],
                                     capture_output=True, text=True, check=True, timeout=60)
                rows = int(out.stdout.strip())
            else:
                db = self.ctx.work / f"{gw.key}-data" / "tollgate.db"
                with sqlite3.connect(db) as conn:
                    rows = conn.execute("select count(*) from spend_logs").fetchone()[0]
        except (OSError, ValueError, subprocess.SubprocessError, sqlite3.Error) as e:
            self.note(f"{gw.key}: cannot count spend rows: {e}")
        self.results[gw.key]["spend"] = {"sent": sent, "rows": rows,
                                         "lost": None if rows is None else sent - rows}
        self.note(f"{gw.key}: {rows} spend rows for {sent} requests sent")


def stream_numbers(r: dict, direct: dict | None) -> dict:
    f, g = lat(r, "first_event_ms"), lat(r, "gap_ms")
    out = {"ttft_p50": f.get("p50"), "ttft_p99": f.get("p99"), "gap_p50": g.get("p50"),
           "gap_p99": g.get("p99"), "events": r.get("events_per_stream_mean"), "n": r["ok"],
           "errors": r["error_count"], "error_kinds": r["errors"]}
    if direct is not None and f.get("p50") is not None:
        df, dg = lat(direct, "first_event_ms"), lat(direct, "gap_ms")
        out.update(added_ttft_p50=f["p50"] - df["p50"], added_ttft_p99=f["p99"] - df["p99"],
                   gap_diff_p50=g["p50"] - dg["p50"], gap_diff_p99=g["p99"] - dg["p99"])
    return out


def ttft_numbers(r: dict, direct: dict | None) -> dict:
    f = lat(r, "first_event_ms")
    out = {"p50": f.get("p50"), "p99": f.get("p99"), "samples": f.get("count", 0),
           "n": r["ok"], "errors": r["error_count"], "error_kinds": r["errors"]}
    if direct is not None:
        df = lat(direct, "first_event_ms")
        out["direct_samples"] = df.get("count", 0)
        if f.get("p50") is not None and df.get("p50") is not None:
            out.update(added_p50=f["p50"] - df["p50"], added_p99=f["p99"] - df["p99"])
    return out


def round_rate(rate: float) -> float:
    """Two significant digits, so probe rates read well in the table."""
    if rate <= 0:
        return rate
    digits = 1 - int(math.floor(math.log10(rate)))
    return round(rate, digits) if digits > 0 else float(round(rate, digits))


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}f}" if abs(v) < 10 else f"{v:.1f}"
