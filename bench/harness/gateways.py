"""The systems under test: how each is installed, configured, started and called."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .loadgen import anthropic_target, chat_target
from .procs import Proc, free_port, http

# A model the Copilot stand-in serves on /chat/completions and bills at 0 premium requests, so
# the Copilot row measures the path and not the premium-request accounting; and the name the
# tollgate config gives it.
COPILOT_MODEL = "gpt-4o"
COPILOT_ALIAS = "copilot-gpt-4o"

# Variables that would change how a competitor or tollgate runs if inherited from the shell.
SCRUBBED_ENV = ("DATABASE_URL", "TOLLGATE_MASTER_KEY", "LITELLM_MASTER_KEY", "PROXY_STATIC_TOKEN",
                "TOLLGATE_CONFIG", "TOLLGATE_DATA_DIR", "TOLLGATE_HOST", "TOLLGATE_PORT",
                "TOLLGATE_AUTH_PORT", "TOLLGATE_LOG", "RUST_LOG", "HTTP_PROXY", "HTTPS_PROXY",
                "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "TOLLGATE_GITHUB_URL",
                "TOLLGATE_GITHUB_API_URL")


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@dataclass
class Ctx:
    """Where things are and how processes are laid out on the cores."""
    repo: Path
    work: Path
    logs: Path
    bins: Path
    mock_url: str = ""
    sut_cores: str | None = None
    load_cores: str | None = None
    mock_cores: str | None = None
    pg_url: str | None = None  # features-on tollgate's DATABASE_URL; None = SQLite
    github_url: str = ""  # the GitHub/Copilot stand-in; "" = no Copilot row
    notes: list[str] = field(default_factory=list)


@dataclass
class Variant:
    """One row of the results: a way of calling a gateway."""
    key: str
    label: str
    gateway: "Gateway"
    protocol: str = "openai"  # or "anthropic"
    owns_process: bool = True  # memory is reported once per process
    skipped: str | None = None
    path: str = "/v1/chat/completions"
    model: str | None = None  # None: the model every other row asks for
    scenarios: frozenset[str] | None = None  # which measurements include this row; None: all

    def target(self, stream: bool = False) -> dict:
        gw = self.gateway
        if self.protocol == "anthropic":
            return anthropic_target(self.key, gw.base, gw.api_key, stream)
        return chat_target(self.key, gw.base, gw.headers(), stream, path=self.path,
                           model=self.model)

    def runs(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios


class Gateway:
    key = ""
    label = ""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.procs: list[Proc] = []
        self.base = ""
        self.api_key: str | None = None
        self.version = ""

    def headers(self) -> dict:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def variants(self) -> list[Variant]:
        return [Variant(self.key, self.label, self)]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


class Direct(Gateway):
    key, label = "direct", "direct (client → mock)"

    def start(self):
        self.base = self.ctx.mock_url
        self.version = "tollgate-mock (testkit)"

    def variants(self):
        return [Variant(self.key, self.label, self, owns_process=False)]


class DirectCopilot(Gateway):
    """The client calling the Copilot stand-in itself, with a Copilot token of an account the
    stand-in was told about: what the Copilot row costs without tollgate in between."""
    key, label = "direct-copilot", "direct (client → Copilot mock)"

    def start(self):
        oauth = "ghu_bench_direct_" + secrets.token_hex(8)
        status, body = http("POST", self.ctx.github_url + "/__mock/account",
                            {"access_token": oauth})
        if status != 200:
            raise RuntimeError(f"Copilot mock: /__mock/account answered {status}: {body}")
        status, body = http("GET", self.ctx.github_url + "/api/copilot_internal/v2/token",
                            None, {"authorization": f"token {oauth}"})
        if status != 200 or not isinstance(body, dict) or "token" not in body:
            raise RuntimeError(f"Copilot mock: the token exchange answered {status}: {body}")
        self.api_key = body["token"]
        self.base = body["endpoints"]["api"]
        self.version = "tollgate-mock --github (testkit)"

    def headers(self):
        # What the stand-in requires of every call, as Copilot does.
        return {"authorization": f"Bearer {self.api_key}", "editor-version": "vscode/1.99.3"}

    def variants(self):
        return [Variant(self.key, self.label, self, owns_process=False, path="/chat/completions",
                        model=COPILOT_MODEL, scenarios=frozenset({"throughput"}))]


class Nginx(Gateway):
    key, label = "nginx", "nginx (bare reverse proxy)"

    @staticmethod
    def install(ctx: Ctx) -> str | None:
        if shutil.which("nginx"):
            return None
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            return "nginx is not installed and apt-get is not usable here"
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log = ctx.logs / "install-nginx.log"
        with open(log, "wb") as out:
            for cmd in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "nginx-light"]):
                if subprocess.run(cmd, stdout=out, stderr=out, env=env, check=False).returncode:
                    return f"`{' '.join(cmd)}` failed; see {log}"
        return None if shutil.which("nginx") else "nginx-light installed but no nginx binary"

    def start(self):
        port = free_port()
        prefix = self.ctx.work / "nginx"
        (prefix / "temp").mkdir(parents=True, exist_ok=True)
        mock = self.ctx.mock_url.removeprefix("http://")
        conf = prefix / "nginx.conf"
        conf.write_text(f"""\
# Generated by bench/run: nginx as a bare reverse proxy, one worker (it gets one core).
worker_processes 1;
worker_rlimit_nofile 65536;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    upstream mock {{
        server {mock};
        keepalive 1024;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
""")
        proc = Proc("nginx", ["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                    self.ctx.logs, cores=self.ctx.sut_cores)
        self.procs = [proc]
        self.base = f"http://127.0.0.1:{port}"
        proc.wait_http(self.base + "/v1/models", 20, ok=lambda s: s == 200)
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
        self.version = (out.stderr or out.stdout).strip().removeprefix("nginx version: ")


class Portkey(Gateway):
    key, label = "portkey", "Portkey gateway"

    def package_dir(self) -> Path:
        return self.ctx.work / "node" / "node_modules" / "@portkey-ai" / "gateway"

    # @portkey-ai/gateway declares `@hono/node-server: ^1.3.3`, but every version after the
    # one its own repository pins fails streamed responses with `TypeError: immutable`
    # (Portkey-AI/gateway#1389), so the install pins that version as its repository does.
    PACKAGE_JSON = """\
{
  "name": "bench-portkey",
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "latest" },
  "overrides": { "@hono/node-server": "1.13.5" }
}
"""

    @staticmethod
    def install(ctx: Ctx) -> str | None:
        node_dir = ctx.work / "node"
        pkg = node_dir / "node_modules" / "@portkey-ai" / "gateway" / "build"
        hono = node_dir / "node_modules" / "@hono" / "node-server" / "package.json"
        pinned = hono.exists() and json.loads(hono.read_text()).get("version") == "1.13.5"
        if (pkg / "start-server.js").exists() and pinned:
            return None
        if not shutil.which("npm") or not shutil.which("node"):
            return "node/npm are not installed (Debian: apt-get install nodejs npm)"
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "package.json").write_text(Portkey.PACKAGE_JSON)
        log = ctx.logs / "install-portkey.log"
        with open(log, "wb") as out:
            rc = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=node_dir,
                                stdout=out, stderr=out, check=False).returncode
        if rc or not (pkg / "start-server.js").exists():
            return f"`npm install @portkey-ai/gateway` failed; see {log}"
        return None

    def start(self):
        port = free_port()
        pkg = self.package_dir()
        proc = Proc("portkey", ["node", "build/start-server.js", f"--port={port}", "--headless"],
                    self.ctx.logs, cores=self.ctx.sut_cores, cwd=pkg,
                    env=clean_env(NODE_ENV="production"))
        self.procs = [proc]
        self.base = f"http://127.0.0.1:{port}"
        proc.wait_http(self.base + "/", 30)
        self.version = json.loads((pkg / "package.json").read_text())["version"]

    def headers(self):
        # Its self-hosted routing: provider and base URL per request, in headers.
        return {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"{self.ctx.mock_url}/v1",
            "authorization": "Bearer sk-mock",
        }


class LiteLLM(Gateway):
    key, label = "litellm", "LiteLLM proxy (2 workers)"

    @staticmethod
    def install(ctx: Ctx) -> str | None:
        venv = ctx.work / "venv"
        if (venv / "bin" / "litellm").exists():
            return None
        log = ctx.logs / "install-litellm.log"
        with open(log, "wb") as out:
            for cmd in ([shutil.which("python3") or "python3", "-m", "venv", str(venv)],
                        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                         "litellm[proxy]"]):
                if subprocess.run(cmd, stdout=out, stderr=out, check=False).returncode:
                    return f"`{' '.join(cmd)}` failed; see {log}"
        return None

    def start(self):
        port = free_port()
        venv = self.ctx.work / "venv"
        cfg = self.ctx.work / "litellm.yaml"
        cfg.write_text(f"""\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {self.ctx.mock_url}/v1
      api_key: sk-mock
""")
        # LiteLLM refuses to start without a master key; without a database the key check
        # is an in-memory comparison. The cost map ships with the package (no network here).
        self.api_key = "sk-bench-litellm-" + secrets.token_hex(8)
        env = clean_env(LITELLM_MASTER_KEY=self.api_key, LITELLM_LOCAL_MODEL_COST_MAP="True",
                        LITELLM_TELEMETRY="False")
        proc = Proc("litellm", [str(venv / "bin" / "litellm"), "--config", str(cfg), "--host",
                                "127.0.0.1", "--port", str(port), "--num_workers", "2"],
                    self.ctx.logs, cores=self.ctx.sut_cores, env=env)
        self.procs = [proc]
        self.base = f"http://127.0.0.1:{port}"
        proc.wait_http(self.base + "/health/liveliness", 180, ok=lambda s: s == 200)
        out = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True, check=False)
        self.version = out.stdout.strip()


class Tollgate(Gateway):
    """tollgate, bare (no credentials: loopback only, no limits) or with every feature on."""

    def __init__(self, ctx: Ctx, features: bool, *, key: str | None = None,
                 label: str | None = None, pg_url: str | None = None,
                 env: dict | None = None, master: str | None = None,
                 api_key: str | None = None):
        """`key`/`label` name the row; `pg_url` overrides the context's database; `env` adds
        variables (REDIS_URL); `master` and `api_key` make a second replica of a first one:
        same master key, and the first one's virtual key instead of a new one."""
        super().__init__(ctx)
        self.features = features
        self.key = key or ("tollgate-features" if features else "tollgate-bare")
        self.pg_url = pg_url or ctx.pg_url
        store = "PostgreSQL" if self.pg_url else "SQLite"
        # Bare still records spend: tollgate has no switch for that, and with no DATABASE_URL
        # it writes to its embedded SQLite, inside its own process.
        self.label = label or (f"tollgate features-on ({store})" if features
                               else "tollgate bare (no auth; spend → SQLite)")
        self.extra_env = env or {}
        self.master = master
        self.api_key = api_key
        self.anthropic: str | None = None  # why the Anthropic variant is skipped
        # The Copilot row: features-on with the stand-in to serve it; None once it answers.
        self.copilot_row = features and bool(ctx.github_url) and master is None
        self.copilot: str | None = "no account linked yet" if self.copilot_row else None
        self.auth_base = ""
        self.probes_proxied = 0

    def variants(self):
        out = [Variant(self.key, self.label, self)]
        if self.features:
            out.append(Variant(f"{self.key}-anthropic", "tollgate features-on, Anthropic → OpenAI",
                               self, protocol="anthropic", owns_process=False,
                               skipped=self.anthropic))
        if self.copilot_row:
            out.append(Variant(f"{self.key}-copilot",
                               "tollgate features-on, Copilot (shared linked account)", self,
                               owns_process=False, skipped=self.copilot,
                               model=COPILOT_ALIAS, scenarios=frozenset({"throughput"})))
        return out

    def start(self):
        port, auth_port = free_port(), free_port()
        data = self.ctx.work / f"{self.key}-data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        cfg = self.ctx.work / "tollgate.yaml"
        cfg.write_text(f"""\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {self.ctx.mock_url}/v1
      api_key: sk-mock
""" + (f"""  - model_name: {COPILOT_ALIAS}
    litellm_params:
      model: github_copilot/{COPILOT_MODEL}
""" if self.copilot_row else ""))
        extra = {"TOLLGATE_DATA_DIR": str(data), **self.extra_env}
        if self.copilot_row:
            extra["TOLLGATE_GITHUB_URL"] = self.ctx.github_url
            extra["TOLLGATE_GITHUB_API_URL"] = self.ctx.github_url + "/api"
        master = None
        if self.features:
            master = self.master or "sk-bench-master-" + secrets.token_hex(8)
            self.master = master
            extra["TOLLGATE_MASTER_KEY"] = master
            if self.pg_url:
                extra["DATABASE_URL"] = self.pg_url
        binary = self.ctx.bins / "tollgate"
        proc = Proc(self.key, [str(binary), "serve", "--config", str(cfg), "--host", "127.0.0.1",
                               "--port", str(port), "--auth-port", str(auth_port)],
                    self.ctx.logs, cores=self.ctx.sut_cores, env=clean_env(**extra))
        self.procs = [proc]
        self.base = f"http://127.0.0.1:{port}"
        self.auth_base = f"http://127.0.0.1:{auth_port}"
        # Readiness, not liveness: tollgate listens at once and loads its keys just after.
        proc.wait_http(self.base + "/health/readiness", 60, ok=lambda s: s == 200)
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=False)
        self.version = out.stdout.strip() + git_revision(self.ctx.repo)
        if master and self.api_key:
            self.wait_for_key()
        elif master:
            status, body = http("POST", self.base + "/key/generate",
                                # Unique: the unpinned part starts a second instance on the
                                # same database.
                                {"key_alias": "bench-" + secrets.token_hex(4),
                                 "rpm_limit": 1_000_000_000,
                                 "max_budget": 1_000_000_000.0},
                                {"authorization": f"Bearer {master}"})
            if status != 200 or not isinstance(body, dict) or "key" not in body:
                raise RuntimeError(f"{self.key}: /key/generate answered {status}: {body}")
            self.api_key = body["key"]
            self.anthropic = self.probe_anthropic()
            if self.copilot_row:
                self.copilot = self.link_copilot()

    def wait_for_key(self, timeout: float = 30.0) -> None:
        """A replica learns a key made through another one from the shared database."""
        deadline = time.monotonic() + timeout
        status, body = 0, None
        while time.monotonic() < deadline:
            status, body = http("GET", self.base + "/v1/models", None, self.headers())
            if status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.key}: the shared key was not accepted in {timeout:.0f}s "
                           f"({status}: {str(body)[:200]})")

    def probe_anthropic(self) -> str | None:
        """None when `/v1/messages` answers; otherwise why the Anthropic scenario is skipped."""
        target = anthropic_target("probe", self.base, self.api_key)
        status, body = http("POST", target["url"], target["body_json"], target["headers"])
        if status == 404:
            return ("tollgate answers 404 on /v1/messages (the Anthropic route is not built "
                    "yet); this scenario runs once it exists")
        self.probes_proxied += 1
        if status != 200:
            return f"/v1/messages answered {status}: {str(body)[:200]}"
        return None


    def link_copilot(self, timeout: float = 30.0) -> str | None:
        """Links the shared Copilot account as an admin does: the auth helper's `/github` page
        with the master key starts a device flow, the stand-in approves it (the user's part on
        GitHub), and the flow's status turns to linked. Then waits until a chat on the Copilot
        model is answered. None when it is; otherwise why the Copilot row is skipped."""
        status, page = http("GET", self.auth_base + "/github", None,
                            {"authorization": f"Bearer {self.master}"})
        found = re.search(r"/github/status\?flow=([A-Za-z0-9_-]+)", str(page))
        if status != 200 or not found:
            return f"the auth helper's /github page answered {status} without a device flow"
        status, body = http("POST", self.ctx.github_url + "/__mock/approve")
        if status != 200:
            return f"the Copilot mock did not approve the device flow: {status} {body}"
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline and state != "linked":
            status, body = http("GET", f"{self.auth_base}/github/status?flow={found.group(1)}")
            state = body.get("state") if isinstance(body, dict) else None
            time.sleep(0.2)
        if state != "linked":
            return f"the device flow did not reach linked in {timeout:.0f}s (last: {body})"
        target = chat_target("probe", self.base, self.headers(), model=COPILOT_ALIAS)
        while time.monotonic() < deadline:
            status, body = http("POST", target["url"], target["body_json"], target["headers"])
            self.probes_proxied += 1
            if status == 200:
                return None
            time.sleep(0.2)
        return f"a Copilot chat after linking answered {status}: {str(body)[:200]}"


def git_revision(repo: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "crates"],
                               capture_output=True, text=True, check=False).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" (git {rev}{', uncommitted changes in crates/' if dirty else ''})"
