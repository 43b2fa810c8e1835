"""bench/results/<date>.md: tables, ratios against tollgate, targets of issue 7."""

from __future__ import annotations

import platform
from pathlib import Path

from . import chart
from .procs import NPROC

ORDER = ["direct", "direct-copilot", "nginx", "tollgate-bare", "tollgate-features",
         "tollgate-features-anthropic", "tollgate-features-copilot", "portkey", "litellm"]
COMPETITORS = ["nginx", "portkey", "litellm"]
TG, TB = "tollgate-features", "tollgate-bare"


def num(v, digits=2, unit=""):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}{unit}"
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    return f"{v:.{digits}f}{unit}"


def get(results: dict, key: str, *path):
    v = results.get(key, {})
    for p in path:
        if not isinstance(v, dict):
            return None
        v = v.get(p)
    return v


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:,.0f}×" if r >= 100 else f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def rows(data: dict) -> list[str]:
    res = data["results"]
    return [k for k in ORDER if k in res] + sorted(k for k in res if k not in ORDER)


def table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def write(out_dir: Path, date: str, data: dict) -> None:
    res, labels, s = data["results"], data["labels"], data["settings"]
    md: list[str] = [f"# tollgate benchmarks, {date}", ""]
    md += [
        f"Machine: `nproc` = {NPROC}, {cpu_model()}, {mem_total_gb():.0f} GiB RAM, "
        f"Linux {platform.release()}. One run of `bench/run` ({data['elapsed_s'] / 60:.1f} min).",
        "",
        ("Layout: system under test pinned to core 0; load generator and mock upstream share "
         "core 1 (`taskset`). PostgreSQL is the machine's server, not pinned."
         if data["pinned"] else "Layout: nothing pinned."),
        "",
        "1-minute load average at the start and end of each part: "
        + ", ".join(f"{k} {a:.2f}→{b:.2f}" for k, (a, b) in data["loads"].items()) + ".",
        "",
        "## Versions", "",
    ]
    md += table(["system", "version"],
                [[labels.get(k, k), f"`{data['versions'].get(k) or '—'}`"] for k in rows(data)
                 if k in data["versions"] or k == "direct"])
    md += ["", "## Results", "",
           f"### Latency at concurrency 1 (ms; {s['c1_rounds']} interleaved rounds with the "
           "direct path, upstream answers at once"
           + (", pinned layout)" if data["pinned"] else ", nothing pinned)"), ""]
    md += c1_table(data, "c1")
    if any("c1_unpinned" in r for r in res.values()):
        md += ["", "### Latency at concurrency 1, nothing pinned (ms; the same rows started "
               f"again without `taskset`, {s.get('c1_unpinned_rounds')} interleaved rounds of "
               f"{s.get('c1_unpinned_secs')} s in one run)", ""]
        md += c1_table(data, "c1_unpinned")

    md += ["", f"### Throughput and CPU (closed loop, concurrency {s['tp_concurrency']}, "
           f"upstream answers at once; sustained rate: highest fixed rate with p99 < "
           f"{s['p99_limit_ms']:.0f} ms and < {s['error_limit']:.1%} errors, upstream "
           f"{s['upstream_delay_ms']} ms)", ""]
    lines = []
    for k in rows(data):
        t, su = res[k].get("throughput"), res[k].get("sustained")
        if not t and not su:
            continue
        rate = get(res, k, "sustained", "rate")
        cap = " (cap)" if get(res, k, "sustained", "capped") else ""
        probes = get(res, k, "sustained", "probes") or []
        never = f"< {min(p['rate'] for p in probes):.0f}" if probes and not rate else "—"
        pg = get(res, k, "throughput", "pg_cpu_s_per_10k")
        lines.append([labels.get(k, k), num(get(res, k, "throughput", "rps"), 0),
                      num(get(res, k, "throughput", "p99"), 2),
                      num(get(res, k, "throughput", "cpu_s_per_10k"), 2)
                      + (f" (+{num(pg, 2)} PostgreSQL)" if pg is not None else ""),
                      num(get(res, k, "throughput", "cpu_util") and
                          100 * get(res, k, "throughput", "cpu_util"), 0, "%"),
                      (num(rate, 0) + cap) if rate else never,
                      num(get(res, k, "sustained", "cpu_util_at_rate") and
                          100 * get(res, k, "sustained", "cpu_util_at_rate"), 0, "%") + " / "
                      + num(get(res, k, "sustained", "cpu_util_at_fail") and
                            100 * get(res, k, "sustained", "cpu_util_at_fail"), 0, "%"),
                      str(get(res, k, "throughput", "errors") or 0)])
    md += table(["system", "req/s", "p99 ms", "CPU s / 10k req", "CPU (1 core = 100%)",
                 "sustained req/s @20 ms", "CPU at sustained / first failing rate", "errors"],
                lines)

    md += ["", f"### Streaming and memory ({s['stream_concurrency']} concurrent streams of 64 "
           f"deltas {s['chunk_interval_ms']} ms apart, interleaved with direct; peak RSS while "
           f"{s['rss_streams']} streams of 64 deltas {s['rss_chunk_interval_ms']} ms apart are "
           "open at once, measured right after start-up; RSS at the end of each gateway's part)",
           ""]
    lines = []
    for k in rows(data):
        st, ms = res[k].get("stream"), res[k].get("many_streams")
        idle = res[k].get("idle_rss_mb")
        if not st and not ms and idle is None:
            continue
        lines.append([labels.get(k, k), num(get(res, k, "stream", "ttft_p50"), 2) + " / "
                      + num(get(res, k, "stream", "ttft_p99"), 2),
                      num(get(res, k, "stream", "added_ttft_p50"), 2) + " / "
                      + num(get(res, k, "stream", "added_ttft_p99"), 2),
                      num(get(res, k, "stream", "gap_p50"), 2) + " / "
                      + num(get(res, k, "stream", "gap_p99"), 2),
                      num(idle, 1), num(get(res, k, "many_streams", "peak_rss_mb"), 1),
                      num(get(res, k, "final_rss_mb"), 1)
                      + (f" ({get(res, k, 'served'):,} req)" if get(res, k, "served") else ""),
                      f"{get(res, k, 'stream', 'errors') or 0} / "
                      f"{get(res, k, 'many_streams', 'errors') or 0}"])
    md += table(["system", "first event p50 / p99 ms", "added p50 / p99 ms",
                 "gap p50 / p99 ms", "idle RSS MB", f"RSS {s['rss_streams']} streams MB",
                 "RSS at the end MB (requests served)",
                 "errors (streams / 1,000)"], lines)

    if any("ttft" in r for r in res.values()):
        md += ["", f"### Time to first token ({s.get('ttft_concurrency')} concurrent streams of "
               f"{s.get('ttft_chunks')} deltas {s['chunk_interval_ms']} ms apart, "
               f"{s.get('ttft_rounds')} interleaved rounds of {s.get('ttft_secs')} s with "
               "direct; one sample per stream)", ""]
        lines = []
        for k in rows(data):
            t = res[k].get("ttft")
            if t:
                lines.append([labels.get(k, k), num(t.get("p50"), 3), num(t.get("p99"), 3),
                              num(t.get("added_p50"), 3), num(t.get("added_p99"), 3),
                              f"{t.get('samples', 0):,}", str(t.get("errors", 0))])
        md += table(["system", "first event p50 ms", "p99 ms", "added p50 ms", "added p99 ms",
                     "samples (streams)", "errors"], lines)

    md += ["", "## Ratios against tollgate", "",
           "How many times tollgate features-on (bare in brackets) is ahead: throughput and "
           "sustained rate as tollgate ÷ competitor, costs (added latency, memory, CPU) as "
           "competitor ÷ tollgate.", ""]
    def both(f, k, inverse=False):
        a, b, c = f(TG), f(TB), f(k)
        if inverse:
            return f"{ratio(c, a)} ({ratio(c, b)})"
        return f"{ratio(a, c)} ({ratio(b, c)})"

    lines = []
    for k in COMPETITORS:
        if k not in res or res[k].get("skipped"):
            continue
        lines.append([labels.get(k, k),
                      both(lambda x: get(res, x, "throughput", "rps"), k),
                      both(lambda x: get(res, x, "sustained", "rate"), k),
                      both(lambda x: get(res, x, "c1", "added_p50"), k, inverse=True),
                      both(lambda x: get(res, x, "idle_rss_mb"), k, inverse=True),
                      both(lambda x: get(res, x, "many_streams", "peak_rss_mb"), k, inverse=True),
                      both(lambda x: get(res, x, "throughput", "cpu_s_per_10k"), k,
                           inverse=True)])
    md += table(["competitor", "req/s", "sustained", "added p50", "idle RSS", "RSS streams",
                 "CPU / 10k"], lines)

    md += ["", "## Cost of auth + admission + spend recording (issue 3)", ""]
    md += features_cost(res)
    md += ["", "## Targets (issue 7)", ""]
    md += targets(res)
    md += ["", "## Targets (issue 18)", ""]
    md += targets18(res, s)
    md += ["", "## Rate search probes (offered req/s → p99 ms, errors)", ""]
    for k in rows(data):
        probes = get(res, k, "sustained", "probes") or []
        if probes:
            md.append(f"- {labels.get(k, k)}: " + ", ".join(
                f"{p['rate']:.0f} → {num(p['p99'], 1)}"
                + (f" (2nd try; 1st {num(p['first_attempt_p99'], 1)})"
                   if p.get("first_attempt_p99") is not None else "")
                + (f" ({p['error_rate']:.1%} err)" if p["error_rate"] else "")
                + ("" if p["pass"] else " ✗") for p in probes))
    md += ["", f"![p99 latency vs offered rate]({date}-latency.svg)", ""]
    prof = get(res, TG, "profile")
    if prof:
        md += ["## Where tollgate features-on spends its CPU", "",
               "`perf record -F 999` on the tollgate process during a separate "
               f"{s['tp_concurrency']}-connection run; self time by shared object, then by "
               "symbol:", "", "```"]
        md += prof + ["```", ""]
    notes = [f"{k}: skipped: {v}" for k, v in data["skipped"].items()]
    notes += [f"{k}: failed: {v}" for k, v in data["failures"].items()]
    notes += [f"{labels.get(k, k)}: skipped: {r['skipped']}" for k, r in res.items()
              if r.get("skipped")]
    notes += data["notes"]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["See bench/README.md for what each number means and the caveats.", ""]
    (out_dir / f"{date}.md").write_text("\n".join(md))
    chart.write(out_dir / f"{date}-latency.svg", res, labels, s["p99_limit_ms"])


def c1_table(data: dict, field: str) -> list[str]:
    res, labels = data["results"], data["labels"]
    lines = []
    for k in rows(data):
        c = res[k].get(field)
        if res[k].get("skipped") and field == "c1":
            lines.append([labels.get(k, k), "skipped"] + [""] * 7)
        elif c:
            lines.append([labels.get(k, k)]
                         + [num(c.get(q), 3) for q in ("p50", "p99", "p999", "added_p50",
                                                       "added_p99", "added_p999")]
                         + [f"{c.get('n', 0):,}", str(c.get("errors", 0))])
    return table(["system", "p50", "p99", "p99.9", "added p50", "added p99", "added p99.9",
                  "samples", "errors"], lines)


def features_cost(res: dict) -> list[str]:
    b, f = res.get(TB, {}), res.get(TG, {})
    if not b.get("c1") or not f.get("c1"):
        return ["Not measured (both tollgate runs are needed)."]
    out = ["Features-on (master key, a virtual key with rpm limit and budget checked on every "
           "request, spend records to PostgreSQL) against bare (no credentials, no limits). "
           "tollgate has no switch to turn spend recording off, so bare still writes its spend "
           "records, to the embedded SQLite inside its own process; the difference below is "
           "therefore auth + admission + moving spend recording from in-process SQLite to "
           "PostgreSQL.", ""]
    for q in ("p50", "p99"):
        ab, af = b["c1"].get(f"added_{q}"), f["c1"].get(f"added_{q}")
        if ab is not None and af is not None:
            out.append(f"- added latency {q} at concurrency 1: bare {ab * 1000:.0f} µs, "
                       f"features-on {af * 1000:.0f} µs: the features cost "
                       f"{(af - ab) * 1000:+.0f} µs ({ratio(af, ab)} the bare overhead)")
    tb, tf = get(res, TB, "throughput", "rps"), get(res, TG, "throughput", "rps")
    if tb and tf:
        out.append(f"- throughput at concurrency 32: features-on {tf:,.0f} req/s = "
                   f"{tf / tb:.0%} of bare ({tb:,.0f} req/s)")
    cb = get(res, TB, "throughput", "cpu_s_per_10k")
    cf = get(res, TG, "throughput", "cpu_s_per_10k")
    if cb and cf:
        pg = get(res, TG, "throughput", "pg_cpu_s_per_10k")
        out.append(f"- CPU per 10k requests: features-on {cf:.2f} s vs bare {cb:.2f} s "
                   f"({ratio(cf, cb)})" + (f", plus {pg:.2f} s in PostgreSQL" if pg else ""))
    sp = f.get("spend")
    if sp:
        lost = "none lost" if sp["lost"] == 0 else f"{sp['lost']} missing"
        out.append(f"- spend records: {sp['rows']} rows for {sp['sent']} requests sent ({lost})")
    return out


def verdict(ok: bool | None) -> str:
    return "**not measured**" if ok is None else ("**met**" if ok else "**missed**")


def targets(res: dict) -> list[str]:
    out = []
    a99 = get(res, TG, "c1", "added_p99")
    out.append(f"- Added p99 at concurrency 1, features-on ≤ 0.15 ms: "
               f"{verdict(None if a99 is None else a99 <= 0.15)}: "
               f"{num(a99 and a99 * 1000, 0)} µs"
               + (f" ({(a99 - 0.15) * 1000:+.0f} µs against the target)" if a99 else "")
               + f"; bare {num((get(res, TB, 'c1', 'added_p99') or 0) * 1000, 0)} µs, nginx "
               f"{num((get(res, 'nginx', 'c1', 'added_p99') or 0) * 1000, 0)} µs.")
    ng = get(res, "nginx", "throughput", "rps")
    tb, tf = get(res, TB, "throughput", "rps"), get(res, TG, "throughput", "rps")
    for name, v, need in (("bare", tb, 0.8), ("features-on", tf, 0.5)):
        ok = None if not (v and ng) else v / ng >= need
        out.append(f"- Throughput at concurrency 32, {name} ≥ {need:.0%} of nginx: {verdict(ok)}: "
                   + (f"{v:,.0f} vs {ng:,.0f} req/s = {v / ng:.0%}" if v and ng else "—") + ".")
    for comp, need in (("litellm", 200), ("portkey", 30)):
        c = get(res, comp, "throughput", "rps")
        ok = None if not (c and tf) else tf / c >= need
        out.append(f"- Features-on ≥ {need}× {comp}: {verdict(ok)}: "
                   + (f"{tf / c:,.0f}× ({tf:,.0f} vs {c:,.0f} req/s)" if c and tf else "—") + ".")
    rate = get(res, TG, "sustained", "rate")
    util = get(res, TG, "sustained", "cpu_util_at_rate")
    fail = get(res, TG, "sustained", "first_fail")
    fail_util = get(res, TG, "sustained", "cpu_util_at_fail")
    floor = get(res, "direct", "sustained", "rate")
    ok = None if fail_util is None else fail_util < 0.9
    out.append(f"- Sustained rate at 20 ms upstream, features-on, limited by concurrency (here: "
               f"the load side) rather than tollgate's CPU: {verdict(ok)}: {num(rate, 0)} req/s "
               f"with tollgate at {num(util and util * 100, 0)}% of its core; at the first "
               f"failing rate, {num(fail, 0)} req/s, tollgate used "
               f"{num(fail_util and fail_util * 100, 0)}% of its core"
               + (" (its CPU was the limit)" if ok is False else "")
               + f"; the direct path sustains {num(floor, 0)} req/s on the same machine.")
    t99 = get(res, TG, "stream", "added_ttft_p99")
    out.append(f"- Streaming, added time to first token p99 ≤ 1 ms: "
               f"{verdict(None if t99 is None else t99 <= 1.0)}: {num(t99, 3)} ms.")
    g50, g99 = get(res, TG, "stream", "gap_diff_p50"), get(res, TG, "stream", "gap_diff_p99")
    ok = None if g50 is None else abs(g50) <= 0.5 and abs(g99) <= 0.5
    out.append(f"- Inter-chunk gap unchanged within 0.5 ms: {verdict(ok)}: p50 "
               f"{num(g50, 3)} ms, p99 {num(g99, 3)} ms against direct.")
    for name, key in (("features-on", TG), ("bare", TB)):
        m = get(res, key, "many_streams", "peak_rss_mb")
        n = get(res, key, "many_streams", "streams") or 1000
        end, served = get(res, key, "final_rss_mb"), get(res, key, "served")
        out.append(f"- {n:,} concurrent streams under 100 MB RSS ({name}): "
                   f"{verdict(None if m is None else m < 100)}: {num(m, 1)} MB"
                   + (f" (on a fresh process; after serving {served:,} requests its RSS was "
                      f"{num(end, 1)} MB)" if end and served else "") + ".")
        i = get(res, key, "idle_rss_mb")
        out.append(f"- Idle RSS under 30 MB ({name}): {verdict(None if i is None else i < 30)}: "
                   f"{num(i, 1)} MB.")
    sp = get(res, TG, "spend")
    out.append(f"- Spend writer keeps up, zero records lost: "
               f"{verdict(None if not sp or sp['lost'] is None else sp['lost'] == 0)}: "
               + (f"{sp['rows']} rows for {sp['sent']} requests." if sp else "—"))
    return out


def against(value, target: float, *, at_least: bool, scale: float = 1.0, unit: str = "",
            digits: int = 0) -> str:
    """Met or missed, and by how much, for a value that must be ≥ (`at_least`) or ≤ `target`;
    `scale` and `unit` say how the difference is written (1000 and " µs" for milliseconds)."""
    if value is None:
        return verdict(None)
    margin = (value - target if at_least else target - value) * scale
    if margin >= 0:
        return f"**met** with {margin:,.{digits}f}{unit} to spare"
    return f"**missed** by {-margin:,.{digits}f}{unit}"


def share(a, b) -> float | None:
    return a / b if a and b else None


def targets18(res: dict, s: dict) -> list[str]:
    """Each target: the measured value, the target, met or missed by how much."""
    out = []
    ng = get(res, "nginx", "throughput", "rps")
    tf, tb = get(res, TG, "throughput", "rps"), get(res, TB, "throughput", "rps")
    an = get(res, f"{TG}-anthropic", "throughput", "rps")
    cp = get(res, f"{TG}-copilot", "throughput", "rps")
    dr, dc = get(res, "direct", "throughput", "rps"), get(res, "direct-copilot", "throughput",
                                                          "rps")
    c = s.get("tp_concurrency", 32)
    for name, a, b, of, need, extra in (
            ("features-on", tf, ng, "nginx", 0.5, ""),
            ("bare", tb, ng, "nginx", 0.8, ""),
            ("Anthropic → OpenAI", an, tf, "same-protocol features-on", 0.8, ""),
            ("Copilot (shared linked account)", cp, tf, "`openai/` features-on", 0.9,
             f"; the Copilot mock answers the client directly at {num(dc, 0)} req/s, the "
             f"OpenAI mock at {num(dr, 0)} req/s")):
        r = share(a, b)
        out.append(f"- Throughput at concurrency {c}, {name} ≥ {need:.0%} of {of}: "
                   + (f"{a:,.0f} vs {b:,.0f} req/s = {r:.1%}: " if r is not None else "")
                   + against(r and r * 100, need * 100, at_least=True, unit=" points",
                             digits=1)
                   + f"{extra}.")
    for field, layout in (("c1", "pinned layout"), ("c1_unpinned", "nothing pinned")):
        for q, name, limit in (("p99", "p99", 0.15), ("p999", "p99.9", 0.5)):
            v = get(res, TG, field, f"added_{q}")
            n = get(res, TG, field, "n")
            others = ", ".join(
                f"{who} {num(x * 1000, 0)} µs" for who, x in
                (("bare", get(res, TB, field, f"added_{q}")),
                 ("nginx", get(res, "nginx", field, f"added_{q}"))) if x is not None)
            out.append(f"- Added {name} at concurrency 1, features-on, {layout}, ≤ "
                       f"{limit * 1000:.0f} µs: "
                       + (f"{v * 1000:,.0f} µs over {n:,} samples: " if v is not None else "")
                       + against(v, limit, at_least=False, scale=1000, unit=" µs")
                       + (f"; {others}" if others else "") + ".")
    t = get(res, TG, "ttft") or {}
    need = s.get("ttft_min_samples", 1000)
    v, n = t.get("added_p99"), t.get("samples", 0)
    enough = v is not None and n >= need and (t.get("direct_samples") or 0) >= need
    out.append(f"- Added time to first token p99 ≤ 1 ms, features-on, on ≥ {need:,} streams: "
               + (f"{v * 1000:,.0f} µs over {n:,} streams (direct {t.get('direct_samples', 0):,})"
                  ": " if v is not None else "")
               + (against(v, 1.0, at_least=False, scale=1000, unit=" µs") if enough or v is None
                  else f"**not measured**: fewer than {need:,} samples")
               + "".join(
                   f"; {who} {num((get(res, k, 'ttft', 'added_p99') or 0) * 1000, 0)} µs"
                   for who, k in (("bare", TB), ("Anthropic → OpenAI", f"{TG}-anthropic"),
                                  ("nginx", "nginx")) if get(res, k, "ttft")) + ".")
    return out
