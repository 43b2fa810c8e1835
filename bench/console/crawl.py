"""`bench/run --console`: the admin console at /ui against a large PostgreSQL database.

Seeds a fresh database (bench/console/seed.sql: 10,000 keys, 1,000 users, 100 teams,
1,000,000 spend records over 30 days with their daily rollups, audit entries), starts the
release `tollgate` on it with UI_PASSWORD set, signs in, and crawls every page (first and deep
pages of each list) N times in rotating order. The time per page is the server's own: the
`latency_ms` of tollgate's JSON request log line (TOLLGATE_LOG_FORMAT=json, message
"request"), matched to each request by the `x-request-id` the crawler sends. The time the
crawler saw over loopback is shown beside it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import html as html_lib
import http.client
import json
import math
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from harness.gateways import clean_env
from harness.procs import Proc, free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TARGET_MS = 100.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run --console", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"),
                    help="PostgreSQL admin URL; the benchmark's database is created there")
    ap.add_argument("--reps", type=int, default=50, help="requests per page [50]")
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=1_000)
    ap.add_argument("--teams", type=int, default=100)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--audit", type=int, default=20_000)
    ap.add_argument("--db", help="use this already seeded database (no seeding, not dropped); "
                                 "tollgate still runs any new migration on it")
    ap.add_argument("--keep", action="store_true",
                    help="do not drop the seeded database at the end (reuse it with --db)")
    ap.add_argument("--no-build", action="store_true", help="use target/release/tollgate as is")
    ap.add_argument("--bin", type=Path,
                    help="run this tollgate binary (implies --no-build), e.g. a saved build "
                         "of an earlier commit to measure before and after on one database")
    ap.add_argument("--label", default="", help="a label for the results (e.g. before, after)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return ap.parse_args(argv)


def psql(url: str, *args: str, sql: str | None = None, timeout: float = 3600) -> str:
    cmd = ["psql", url, "-XqAt", "-v", "ON_ERROR_STOP=1", *args]
    if sql is not None:
        cmd += ["-c", sql]
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


def db_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


CONFIG = """\
model_list:
""" + "".join(f"""\
  - model_name: {name}
    litellm_params:
      model: {served}
      api_base: http://127.0.0.1:9/v1
      api_key: sk-unused
""" for name, served in [("gpt-4o-mini", "openai/gpt-4o-mini"), ("gpt-4o", "openai/gpt-4o"),
                         ("claude-sonnet", "openai/claude-sonnet-4"),
                         ("claude-haiku", "openai/claude-haiku-4"),
                         ("gemini-flash", "openai/gemini-2.0-flash")])


class Server:
    """tollgate serve on the benchmark database, logging JSON to a file."""

    def __init__(self, bins: Path, work: Path, url: str, password: str, name: str):
        self.port = free_port()
        data = work / f"{name}-data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = work / "tollgate.yaml"
        cfg.write_text(CONFIG)
        self.master_key = "sk-console-master-" + secrets.token_hex(8)
        env = clean_env(DATABASE_URL=url, UI_PASSWORD=password, TOLLGATE_LOG_FORMAT="json",
                        TOLLGATE_DATA_DIR=str(data), TOLLGATE_MASTER_KEY=self.master_key)
        self.proc = Proc(name, [str(bins / "tollgate"), "serve", "--config", str(cfg),
                                "--host", "127.0.0.1", "--port", str(self.port),
                                "--auth-port", str(free_port())], work, env=env)
        self.proc.wait_http(f"http://127.0.0.1:{self.port}/health/readiness", 300,
                            ok=lambda s: s == 200)

    def stop(self) -> Path:
        self.proc.stop()
        return self.proc.log_path


class Client:
    """One keep-alive connection carrying the session cookie."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, str, float]:
        hdrs = dict(headers or {})
        if self.cookie:
            hdrs["cookie"] = self.cookie
        for attempt in (1, 2):
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                ms = (time.perf_counter() - t0) * 1000
                return resp.status, dict(resp.getheaders()), text, ms
            except (http.client.HTTPException, ConnectionError):
                if attempt == 2:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        raise AssertionError("unreachable")

    def sign_in(self, password: str, username: str = "admin") -> None:
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        status, headers, text, _ = self.request(
            "POST", "/ui/login", body, {"content-type": "application/x-www-form-urlencoded"})
        cookie = next((v for k, v in headers.items() if k.lower() == "set-cookie"), "")
        if status not in (302, 303) or "tollgate_ui=" not in cookie:
            raise RuntimeError(f"sign-in answered {status} without a session: {text[:300]}")
        self.cookie = cookie.split(";", 1)[0]


def seed(args: argparse.Namespace, url: str) -> float:
    t0 = time.monotonic()
    psql(url, "-v", f"keys={args.keys}", "-v", f"users={args.users}", "-v", f"teams={args.teams}",
         "-v", f"records={args.records}", "-v", f"days={args.days}", "-v", f"audit={args.audit}",
         "-f", str(HERE / "seed.sql"))
    return time.monotonic() - t0


def counts(url: str) -> dict[str, int]:
    out = {}
    for table in ("virtual_keys", "users", "teams", "spend_logs", "spend_daily", "spend_rollup",
                  "audit_log"):
        out[table] = int(psql(url, sql=f"SELECT count(*) FROM {table}"))
    return out


def wait_for_windows(url: str, timeout: float = 120.0) -> float:
    """Waits until the server has built the dashboard's ranking windows for today (it does
    at start); returns the seconds it took."""
    t0 = time.monotonic()
    sql = ("SELECT count(*) FROM spend_window_state "
           "WHERE through = (now() AT TIME ZONE 'UTC')::date")
    while psql(url, sql=sql) != "1":
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("the server did not build the spend windows")
        time.sleep(0.2)
    return time.monotonic() - t0


def next_link(html: str) -> str | None:
    """The path of a list page's "next page" link."""
    m = re.search(r'id="page-next" href="([^"]+)"', html)
    return html_lib.unescape(m.group(1)) if m else None


def pages(client: Client, url: str, keys: int) -> list[tuple[str, str]]:
    """Every page, first and deep pages of each list, with the ids they need."""
    hot = psql(url, sql="SELECT token_hash FROM virtual_keys ORDER BY spend DESC LIMIT 1")
    cold = psql(url, sql="SELECT token_hash FROM virtual_keys WHERE spend > 0 "
                         "ORDER BY spend LIMIT 1")
    hot_user = psql(url, sql="SELECT user_id FROM users ORDER BY spend DESC LIMIT 1")
    request_id = psql(url, sql="SELECT request_id FROM spend_logs "
                               "ORDER BY started_at DESC OFFSET 5000 LIMIT 1")
    audit_deep = int(psql(url, sql="SELECT max(id) FROM audit_log")) - 100 * 50
    alias = psql(url, sql="SELECT key_alias FROM virtual_keys WHERE key_alias IS NOT NULL "
                          "ORDER BY created_at LIMIT 1 OFFSET 4000")
    day = psql(url, sql="SELECT to_char((now() - interval '10 days') AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD')")
    # Ten pages back in the logs, by following each page's own "next page" link.
    path = "/ui/logs"
    for _ in range(10):
        status, _, html, _ = client.request("GET", path)
        nxt = next_link(html) if status == 200 else None
        if not nxt:
            raise RuntimeError(f"{path} answered {status} without a link to older records")
        path = nxt
    logs_deep = path
    # The keys page 150 of 200 (50 a page, newest first), where its keyset cursor points:
    # after the last key of page 149.
    deep_keys = max(1, math.ceil(keys / 50) - 50)
    after, after_id = psql(
        url, sql="SELECT to_char(created_at AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '|' || token_hash "
                 "FROM virtual_keys ORDER BY created_at DESC, token_hash DESC "
                 f"OFFSET {(deep_keys - 1) * 50 - 1} LIMIT 1").split("|")
    q = urllib.parse.quote
    return [
        ("dashboard 24h", "/ui/?range=24h"),
        ("dashboard 7d", "/ui/?range=7d"),
        ("dashboard 30d", "/ui/?range=30d"),
        ("keys", "/ui/keys"),
        (f"keys page {deep_keys}", f"/ui/keys?after={q(after)}&after_id={after_id}"),
        ("keys ?order=name", "/ui/keys?order=name"),
        ("keys ?order=spend", "/ui/keys?order=spend"),
        ("keys ?alias=", f"/ui/keys?alias={q(alias)}"),
        ("keys ?user=", f"/ui/keys?user={q(hot_user)}"),
        ("key detail (busiest key)", f"/ui/keys/{hot}"),
        ("key detail (quiet key)", f"/ui/keys/{cold}"),
        ("users", "/ui/users"),
        ("users ?order=spend", "/ui/users?order=spend"),
        ("users ?search=", "/ui/users?search=user-009"),
        ("teams", "/ui/teams"),
        ("models", "/ui/models"),
        ("logs", "/ui/logs"),
        ("logs 10 pages back", logs_deep),
        ("logs ?key= (busiest)", f"/ui/logs?key={hot}"),
        ("logs ?key= (quiet)", f"/ui/logs?key={cold}"),
        ("logs ?user=", f"/ui/logs?user={q(hot_user)}"),
        ("logs ?request_id=", f"/ui/logs?request_id={q(request_id)}"),
        ("logs ?model= (40% of records)", "/ui/logs?model=gpt-4o-mini"),
        ("logs ?model= (alias asked for, 4%)", "/ui/logs?model=mini"),
        ("logs ?model= (served model)", "/ui/logs?model=openai%2Fgpt-4o"),
        ("logs ?model= (rare, 0.2%)", "/ui/logs?model=o1"),
        ("logs ?outcome=failure (3%)", "/ui/logs?outcome=failure"),
        ("logs ?outcome=client_disconnected (0.1%)", "/ui/logs?outcome=client_disconnected"),
        ("logs ?status=5xx", "/ui/logs?status=5xx"),
        ("logs ?status=429", "/ui/logs?status=429"),
        ("logs ?from=&to= (one day)", f"/ui/logs?from={day}&to={day}"),
        ("logs ?model=o1&outcome=failure", "/ui/logs?model=o1&outcome=failure"),
        ("log detail", f"/ui/logs/{q(request_id)}"),
        ("audit", "/ui/audit"),
        ("audit 100 pages back", f"/ui/audit?cursor={audit_deep}"),
        ("settings", "/ui/settings"),
    ]


def crawl(client: Client, targets: list[tuple[str, str]], reps: int,
          others: dict[str, Client] | None = None
          ) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every page `reps` times, in a rotating order; client times by page, request ids.
    A page named in `others` is requested by that client (another user's session)."""
    others = others or {}
    client_ms: dict[str, list[float]] = {name: [] for name, _ in targets}
    ids: dict[str, str] = {}
    for name, path in targets:  # warm-up: plans, caches, connections
        for _ in range(2):
            status, _, text, _ = others.get(name, client).request("GET", path)
            if status != 200:
                raise RuntimeError(f"{name}: GET {path} answered {status}: {text[:300]}")
    run = secrets.token_hex(3)
    for r in range(reps):
        shift = r % len(targets)
        for i, (name, path) in enumerate(targets[shift:] + targets[:shift]):
            rid = f"console-{run}-{r}-{(i + shift) % len(targets)}"
            ids[rid] = name
            status, _, text, ms = others.get(name, client).request(
                "GET", path, headers={"x-request-id": rid})
            if status != 200:
                raise RuntimeError(f"{name}: GET {path} answered {status}: {text[:300]}")
            client_ms[name].append(ms)
    return client_ms, ids


def server_times(log: Path, ids: dict[str, str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        fields = ev.get("fields", ev)
        name = ids.get(fields.get("client_request_id") or "")
        if name and fields.get("message") == "request" and "latency_ms" in fields:
            out.setdefault(name, []).append(float(fields["latency_ms"]))
    return out


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)] if s else float("nan")


def summarise(targets, server, client) -> list[dict]:
    rows = []
    for name, path in targets:
        sv, cv = server.get(name, []), client.get(name, [])
        rows.append({"page": name, "path": path, "n": len(sv),
                     "p50": pct(sv, 50), "p95": pct(sv, 95), "max": max(sv, default=math.nan),
                     "client_p50": pct(cv, 50), "client_p95": pct(cv, 95)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| page | server p50 ms | server p95 ms | server max ms | client p95 ms | "
             "< 100 ms p95 |",
             "|---|---:|---:|---:|---:|:---:|"]
    for r in rows:
        ok = "yes" if r["p95"] < TARGET_MS else "**no**"
        lines.append(f"| {r['page']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
                     f"{r['client_p95']:.1f} | {ok} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    bins = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    bins = (bins if bins.is_absolute() else REPO / bins) / "release"
    if args.bin:
        bins = args.bin.resolve().parent
    elif not args.no_build:
        print("==> cargo build --release -p tollgate", flush=True)
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate"], cwd=REPO, check=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    work = REPO / "bench" / "work" / "console" / stamp
    work.mkdir(parents=True, exist_ok=True)
    password = "console-" + secrets.token_hex(12)
    name = args.db or f"tollgate_console_{stamp}"
    url = db_url(args.pg, name)
    created = False
    server = None
    try:
        if not args.db:
            psql(args.pg, sql=f'CREATE DATABASE "{name}"')
            created = True
            print(f"==> database {name}: migrating (tollgate serve, then stop)", flush=True)
            Server(bins, work, url, password, "tollgate-migrate").stop()
            print(f"==> seeding {args.records:,} spend records, {args.keys:,} keys, "
                  f"{args.users:,} users, {args.teams:,} teams", flush=True)
            print(f"    seeded in {seed(args, url):.0f} s", flush=True)
        else:
            print(f"==> database {name} (already seeded)", flush=True)
        sizes = counts(url)
        print("    " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)
        print("==> starting tollgate (release) and signing in", flush=True)
        server = Server(bins, work, url, password, "tollgate")
        client = Client(server.port)
        client.sign_in(password)
        print(f"    ranking windows built {wait_for_windows(url):.1f} s after sign-in",
              flush=True)
        targets = pages(client, url, args.keys)
        # The busiest user signs in as themselves: their dashboard reads their own rollups.
        hot_user = psql(url, sql="SELECT user_id FROM users ORDER BY spend DESC LIMIT 1")
        user_password = "user-" + secrets.token_hex(8)
        body = json.dumps({"user_id": hot_user, "password": user_password}).encode()
        status, _, text, _ = client.request(
            "POST", "/user/update", body,
            {"content-type": "application/json",
             "authorization": f"Bearer {server.master_key}"})
        if status != 200:
            raise RuntimeError(f"/user/update answered {status}: {text[:300]}")
        user = Client(server.port)
        user.sign_in(user_password, hot_user)
        own = [("dashboard 7d (busiest user, own)", "/ui/?range=7d"),
               ("dashboard 30d (busiest user, own)", "/ui/?range=30d")]
        targets[3:3] = own
        print(f"==> crawling {len(targets)} pages × {args.reps}", flush=True)
        client_ms, ids = crawl(client, targets, args.reps, {name: user for name, _ in own})
        log = server.stop()
        server = None
        server_ms = server_times(log, ids)
        rows = summarise(targets, server_ms, client_ms)
        missing = [r["page"] for r in rows if r["n"] != args.reps]
        if missing:
            print(f"!! no server time for every request of: {', '.join(missing)} "
                  f"(see {log})", flush=True)
        print()
        print(f"Console pages{' (' + args.label + ')' if args.label else ''}: server-side "
              f"latency_ms from the request log, {args.reps} requests each; client = "
              "crawler over loopback")
        print(table(rows))
        over = [r["page"] for r in rows if not r["p95"] < TARGET_MS]
        print(f"\n{len(rows) - len(over)} of {len(rows)} pages under {TARGET_MS:.0f} ms p95"
              + (f"; over: {', '.join(over)}" if over else ""))
        if args.json:
            args.json.write_text(json.dumps({"label": args.label, "database": name,
                                             "sizes": sizes, "reps": args.reps, "rows": rows,
                                             "nproc": os.cpu_count()}, indent=1))
        return 1 if missing else 0
    finally:
        if server:
            server.stop()
        if created and not args.keep:
            psql(args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif created:
            print(f"==> kept database {name} (reuse with --db {name})", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
