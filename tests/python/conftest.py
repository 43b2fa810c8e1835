"""Fixtures that run tollgate against the mock upstream, as real processes.

One `tollgate-mock` and one `tollgate serve` are started per test session; the mock is
reset before every test. Binaries come from TOLLGATE_BIN and TOLLGATE_MOCK_BIN, or from
target/debug/ of this repository when those are unset (build them with
`cargo build --bins`).

tollgate's stderr goes to a file; the part a failing test produced is attached to that
test's report ("tollgate stderr" section), and the whole file is shown when start-up fails.

The gateway also fronts two MCP servers (`mcp_servers:`): `local`, a stdio `tollgate-mock
--mcp-stdio` that tollgate starts itself, and `remote`, a `tollgate-mock --mcp-http` started
here behind a small recording relay, so tests can tell which JSON-RPC messages reached it.

Tests that ask for the `copilot` fixture get a second pair, started on first use: the
GitHub/Copilot stand-in (`tollgate-mock --github`) and a `tollgate serve` with no config
file (every model name goes to Copilot), its account linked through the auth helper's
device flow as a person would.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from openai import OpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-test-master"
UPSTREAM_KEY = "sk-upstream-secret"
START_TIMEOUT_S = 30.0
# The models the gateway is configured with; all point at the same mock. The error tests
# use models of their own so a cooldown after an upstream failure cannot leak into others.
CHAT_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
RATE_LIMITED_MODEL = "gpt-4o-mini-ratelimited"
CUT_MODEL = "gpt-4o-mini-cut"
UPSTREAM_ERROR_MODEL = "gpt-4o-mini-upstream-error"
# Names the Anthropic SDK tests ask for (served by the same OpenAI-format mock, translated).
MESSAGES_MODEL = "claude-sonnet-via-mock"
MESSAGES_RATE_LIMITED_MODEL = "claude-sonnet-via-mock-ratelimited"
# A deployment that speaks the Responses API (`model_info.mode: responses`).
RESPONSES_MODEL = "gpt-5-via-responses"
CONFIGURED_MODELS = {
    CHAT_MODEL: "gpt-4o-mini",
    EMBEDDING_MODEL: "text-embedding-3-small",
    RATE_LIMITED_MODEL: "gpt-4o-mini-rl",
    CUT_MODEL: "gpt-4o-mini-cut",
    UPSTREAM_ERROR_MODEL: "gpt-4o-mini-err",
    MESSAGES_MODEL: "gpt-4o-for-messages",
    MESSAGES_RATE_LIMITED_MODEL: "gpt-4o-for-messages-rl",
    RESPONSES_MODEL: "gpt-5.4",
}

_stderr_log_key = pytest.StashKey[Path]()
_log_offset_key = pytest.StashKey[int]()


def _binary(env_name: str, default_name: str) -> Path:
    path = Path(os.environ.get(env_name) or REPO_ROOT / "target" / "debug" / default_name)
    path = path.resolve()  # the processes run in temporary working directories
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{env_name}: no executable at {path}; run `cargo build --bins` first "
            f"or set {env_name}",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1, released for the caller to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would change tollgate's behaviour."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TOLLGATE_", "LITELLM_", "UI_", "CLAUDE_"))
        and name not in {"DATABASE_URL", "PROXY_STATIC_TOKEN"}
    }
    env.setdefault("RUST_BACKTRACE", "1")
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Mock:
    """A running `tollgate-mock` and a client for its /__mock control API."""

    url: str
    http: httpx.Client = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _ok(self, response: httpx.Response) -> httpx.Response:
        assert response.is_success, (
            f"mock control {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
        return response

    def enqueue(self, spec: dict[str, Any]) -> None:
        """Queues a ReplySpec (see tollgate-testkit's openai_mock/reply.rs) for the next request."""
        self._ok(self.http.post(f"{self.url}/__mock/enqueue", json=spec))

    def set_default(self, spec: dict[str, Any]) -> None:
        self._ok(self.http.post(f"{self.url}/__mock/default", json=spec))

    def reset(self) -> None:
        self._ok(self.http.post(f"{self.url}/__mock/reset"))

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first; only those to `path` when given."""
        recorded = self._ok(self.http.get(f"{self.url}/__mock/requests")).json()
        return [r for r in recorded if path is None or r["path"] == path]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["path"].endswith("/chat/completions")]


@dataclass
class Gateway:
    """A running `tollgate serve`."""

    port: int
    auth_port: int
    stderr_log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, api_key: str = MASTER_KEY, **kwargs: Any) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 20.0)
        return OpenAI(base_url=self.base_url, api_key=api_key, **kwargs)


@pytest.fixture(scope="session")
def tollgate_bin() -> Path:
    return _binary("TOLLGATE_BIN", "tollgate")


@pytest.fixture(scope="session")
def mock_bin() -> Path:
    return _binary("TOLLGATE_MOCK_BIN", "tollgate-mock")


@contextmanager
def _running_mock(mock_bin: Path, workdir: Path, *args: str) -> Iterator[str]:
    """`tollgate-mock ARGS` on a free port, until the block ends; yields its URL."""
    stderr_log = workdir / "mock.stderr.log"
    with stderr_log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(mock_bin), "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_child_env(),
        )
    try:
        yield _read_ready_line(proc, stderr_log)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def mock_server(mock_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    with _running_mock(mock_bin, tmp_path_factory.mktemp("mock")) as url:
        with httpx.Client(timeout=10.0) as http:
            yield Mock(url=url, http=http)


def _read_ready_line(proc: subprocess.Popen[bytes], stderr_log: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().decode("utf-8", "replace").strip()
            if line.startswith("READY "):
                return line.removeprefix("READY ").rstrip("/")
            if not line and proc.poll() is not None:
                break
            pytest.fail(f"tollgate-mock printed {line!r} instead of a READY line", pytrace=False)
        elif proc.poll() is not None:
            break
    _stop(proc)
    pytest.fail(
        f"tollgate-mock did not print READY (exit code {proc.returncode}); stderr:\n"
        + stderr_log.read_text(errors="replace"),
        pytrace=False,
    )


@dataclass
class McpRemote:
    """The `remote` MCP server (`tollgate-mock --mcp-http`) behind a relay that records
    every JSON-RPC message tollgate sends it."""

    url: str
    _seen: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._seen.append(message)

    def messages(self, method: str | None = None) -> list[dict[str, Any]]:
        """The messages received so far, oldest first; only those of `method` when given."""
        with self._lock:
            return [m for m in self._seen if method is None or m.get("method") == method]

    def tool_calls(self) -> list[str]:
        """The tool names of the `tools/call` requests received so far."""
        return [m.get("params", {}).get("name", "") for m in self.messages("tools/call")]


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def _relay_handler(target: str, remote: McpRemote) -> type[BaseHTTPRequestHandler]:
    """Forwards each request to `target` and streams the answer back as it comes (progress
    events must not wait for the end). HTTP/1.0: the closed connection ends each body."""

    class Relay(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if body:
                try:
                    remote.record(json.loads(body))
                except ValueError:
                    remote.record({"unparsed": body.decode("utf-8", "replace")})
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            url = target + self.path
            with httpx.Client(timeout=60.0) as http:
                with http.stream(self.command, url, headers=headers, content=body) as r:
                    self.send_response(r.status_code)
                    for name, value in r.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            self.send_header(name, value)
                    self.end_headers()
                    for chunk in r.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

    return Relay


@pytest.fixture(scope="session")
def mcp_remote(mock_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpRemote]:
    workdir = tmp_path_factory.mktemp("mcp-remote")
    with _running_mock(mock_bin, workdir, "--mcp-http", "--name", "remote") as target:
        relay = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        remote = McpRemote(url=f"http://127.0.0.1:{relay.server_address[1]}/mcp")
        relay.RequestHandlerClass = _relay_handler(target, remote)
        relay.daemon_threads = True
        thread = threading.Thread(target=relay.serve_forever, name="mcp-relay", daemon=True)
        thread.start()
        try:
            yield remote
        finally:
            relay.shutdown()
            relay.server_close()


def _config_yaml(mock: Mock, mock_bin: Path, mcp_remote: McpRemote) -> str:
    lines = ["model_list:"]
    for name, upstream in CONFIGURED_MODELS.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{upstream}",
            f"      api_base: {mock.base_url}",
            f"      api_key: {UPSTREAM_KEY}",
        ]
        if name == RESPONSES_MODEL:
            lines += ["    model_info:", "      mode: responses"]
    lines += [
        "mcp_servers:",
        "  local:",
        f"    command: {json.dumps(str(mock_bin))}",
        "    args: [--mcp-stdio, --name, local]",
        "  remote:",
        f"    url: {mcp_remote.url}",
        "    transport: http",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def gateway(
    tollgate_bin: Path,
    mock_bin: Path,
    mock_server: Mock,
    mcp_remote: McpRemote,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("tollgate")
    config = workdir / "config.yaml"
    config.write_text(_config_yaml(mock_server, mock_bin, mcp_remote))
    with _running_gateway(tollgate_bin, workdir, ["--config", str(config)]) as gateway:
        yield gateway


@contextmanager
def _running_gateway(
    tollgate_bin: Path, workdir: Path, args: list[str], **env_extra: str
) -> Iterator[Gateway]:
    """`tollgate serve ARGS` in `workdir` on free ports, until the block ends."""
    data_dir = workdir / "data"
    data_dir.mkdir()
    stderr_log = workdir / "tollgate.stderr.log"
    port, auth_port = free_port(), free_port()
    while auth_port == port:
        auth_port = free_port()
    env = _child_env(
        TOLLGATE_MASTER_KEY=MASTER_KEY,
        TOLLGATE_DATA_DIR=str(data_dir),
        NO_COLOR="1",
        RUST_LOG=os.environ.get("TOLLGATE_TEST_RUST_LOG", "info"),
        **env_extra,
    )
    cmd = [
        str(tollgate_bin), "serve",
        *args,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--auth-port", str(auth_port),
    ]  # fmt: skip
    with stderr_log.open("wb") as stderr:
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env
        )
    try:
        _wait_until_live(proc, port, stderr_log)
        yield Gateway(port=port, auth_port=auth_port, stderr_log=stderr_log)
    finally:
        _stop(proc)


def _wait_until_live(proc: subprocess.Popen[bytes], port: int, stderr_log: Path) -> None:
    # Readiness, not liveness: tollgate listens at once and loads its keys just after.
    url = f"http://127.0.0.1:{port}/health/readiness"
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = "no attempt"
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"tollgate exited with code {proc.returncode}"
                break
            try:
                response = http.get(url)
                if response.status_code == 200:
                    return
                last_error = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last_error = repr(error)
            time.sleep(0.1)
    _stop(proc)
    pytest.fail(
        f"tollgate did not become live at {url}: {last_error}; stderr:\n"
        + stderr_log.read_text(errors="replace"),
        pytrace=False,
    )


@pytest.fixture(autouse=True)
def _fresh_mock(request: pytest.FixtureRequest, mock_server: Mock, gateway: Gateway) -> Iterator[None]:
    """Resets the mock before each test and remembers where the test's tollgate log starts."""
    mock_server.reset()
    request.node.stash[_stderr_log_key] = gateway.stderr_log
    request.node.stash[_log_offset_key] = gateway.stderr_log.stat().st_size
    yield


@pytest.fixture
def mock(mock_server: Mock) -> Mock:
    return mock_server


@dataclass
class Copilot:
    """The GitHub/Copilot stand-in and the tollgate in front of it, an account linked.

    The stand-in keeps what it recorded across tests: `calls` counts only the model calls
    made since the test began.
    """

    stand_in: str
    gateway: Gateway
    http: httpx.Client = field(repr=False)
    seen: int = 0

    def client(self, **kwargs: Any) -> OpenAI:
        return self.gateway.client(**kwargs)

    def _ok(self, response: httpx.Response) -> httpx.Response:
        assert response.is_success, (
            f"stand-in control {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
        return response

    def enqueue(self, spec: dict[str, Any]) -> None:
        """Queues a ReplySpec for the next chat, responses or embeddings call."""
        self._ok(self.http.post(f"{self.stand_in}/__mock/enqueue", json=spec))

    def _model_calls(self) -> list[dict[str, Any]]:
        recorded = self._ok(self.http.get(f"{self.stand_in}/__mock/requests")).json()
        return [r for r in recorded if r["path"] != "/models"]

    def calls(self) -> list[dict[str, Any]]:
        """The Copilot API model calls since the test began, oldest first."""
        return self._model_calls()[self.seen :]


def _link_copilot(gateway: Gateway, stand_in: str, http: httpx.Client) -> None:
    """Links the default account as a person would: opens /github, approves the device flow
    at the stand-in, and waits for the page's status to say linked, then for the proxy to
    list the account's models."""
    auth_origin = f"http://127.0.0.1:{gateway.auth_port}"
    page = http.get(f"{auth_origin}/github", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert page.status_code == 200, f"/github answered {page.status_code}: {page.text[:300]}"
    found = re.search(r"/github/status\?flow=([A-Za-z0-9_-]+)", page.text)
    assert found, f"no device flow on the /github page: {page.text[:500]}"
    approved = http.post(f"{stand_in}/__mock/approve")
    assert approved.is_success, f"the stand-in did not approve: {approved.text}"
    deadline = time.monotonic() + START_TIMEOUT_S
    state = None
    while time.monotonic() < deadline:
        status = http.get(f"{auth_origin}/github/status", params={"flow": found.group(1)})
        state = status.json().get("state") if status.status_code == 200 else status.text
        if state == "linked":
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the device flow never reached linked (last: {state!r})", pytrace=False)
    # The proxy picks the stored account up by itself, a moment later.
    listed: list[str] = []
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    while time.monotonic() < deadline:
        models = http.get(f"{gateway.base_url}/models", headers=auth)
        if models.status_code == 200:
            listed = [m["id"] for m in models.json().get("data", [])]
        if "gpt-5.4" in listed:
            return
        time.sleep(0.2)
    pytest.fail(
        f"the proxy never listed the linked account's models (last: {listed})", pytrace=False
    )


@pytest.fixture(scope="session")
def copilot_session(
    tollgate_bin: Path, mock_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Copilot]:
    workdir = tmp_path_factory.mktemp("copilot")
    with _running_mock(mock_bin, workdir, "--github") as stand_in:
        github = dict(TOLLGATE_GITHUB_URL=stand_in, TOLLGATE_GITHUB_API_URL=f"{stand_in}/api")
        # No config file: every model name goes to Copilot.
        with _running_gateway(tollgate_bin, workdir, [], **github) as gateway:
            with httpx.Client(timeout=10.0) as http:
                _link_copilot(gateway, stand_in, http)
                yield Copilot(stand_in=stand_in, gateway=gateway, http=http)


@pytest.fixture
def copilot(request: pytest.FixtureRequest, copilot_session: Copilot) -> Copilot:
    """The Copilot pair, counting calls from this test on; a failure shows its tollgate's log."""
    copilot_session.seen = len(copilot_session._model_calls())
    log = copilot_session.gateway.stderr_log
    request.node.stash[_stderr_log_key] = log
    request.node.stash[_log_offset_key] = log.stat().st_size
    return copilot_session


@pytest.fixture
def client(gateway: Gateway) -> OpenAI:
    return gateway.client()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    log = item.stash.get(_stderr_log_key, None)
    if report.failed and log is not None and log.exists():
        # Let tollgate write out what it was logging when the test gave up.
        time.sleep(0.2)
        with log.open("rb") as f:
            f.seek(item.stash.get(_log_offset_key, 0))
            text = f.read().decode("utf-8", "replace")
        report.sections.append(("tollgate stderr", text or "(nothing logged)"))
    return report
