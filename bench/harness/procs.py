"""Processes under test: start pinned to cores, wait until ready, read their memory and CPU
from /proc, stop them. Only processes this harness started are ever signalled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cores: str | None) -> list[str]:
    """`taskset -c CORES` when pinning is possible and wanted, else nothing."""
    if cores is None or NPROC < 2 or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cores]


def http(method: str, url: str, body=None, headers=None, timeout=10.0):
    """A small HTTP call for control and probes: returns (status, parsed JSON or text)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; fields after it are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (LiteLLM's workers, nginx's worker)."""
    tree = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def postgres_cpu_ticks() -> int:
    """CPU of every PostgreSQL server process on the machine (shared with other users)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("postgres"):
                total += cpu_ticks(int(entry))
    return total


class Proc:
    """A started process (and its descendants) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, *, cores: str | None = None,
                 env: dict | None = None, cwd: Path | None = None, ready_line: str | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.ready_line = ready_line
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            pin(cores) + argv,
            stdout=subprocess.PIPE if ready_line else self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: stop() signals only what we started
        )
        self.pid = self.popen.pid

    def wait_line(self, prefix: str, timeout: float) -> str:
        """Waits for a stdout line starting with `prefix`, then keeps copying stdout to the log."""
        assert self.popen.stdout is not None
        deadline = time.monotonic() + timeout
        found = None
        holder: dict = {}

        def reader():
            for raw in self.popen.stdout:
                self.log.write(raw)
                self.log.flush()
                line = raw.decode("utf-8", "replace").strip()
                if "line" not in holder and line.startswith(prefix):
                    holder["line"] = line
        threading.Thread(target=reader, daemon=True).start()
        while time.monotonic() < deadline:
            found = holder.get("line")
            if found or self.popen.poll() is not None:
                break
            time.sleep(0.02)
        if not found:
            raise RuntimeError(f"{self.name}: no `{prefix}` line within {timeout:.0f}s "
                               f"(exit code {self.popen.poll()}); see {self.log_path}")
        return found

    def wait_http(self, url: str, timeout: float, ok=lambda status: status < 500) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.popen.returncode}; "
                                   f"see {self.log_path}")
            try:
                status, _ = http("GET", url, timeout=2)
                if ok(status):
                    return
                last = f"status {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: {url} not ready within {timeout:.0f}s ({last}); "
                           f"see {self.log_path}")

    def pids(self) -> list[int]:
        return tree_pids(self.pid) if self.popen.poll() is None else []

    def rss_kb(self) -> int:
        return sum(status_kb(p, "VmRSS") for p in self.pids())

    def hwm_kb(self) -> int:
        return sum(status_kb(p, "VmHWM") for p in self.pids())

    def cpu_ticks(self) -> int:
        return sum(cpu_ticks(p) for p in self.pids())

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM to the process group we created, SIGKILL after `grace` seconds."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        self.log.close()
        return self.popen.returncode


class RssSampler:
    """Samples a process tree's total RSS in the background; `peak_kb` is the highest seen."""

    def __init__(self, procs: list[Proc], interval: float = 0.2):
        self.procs = procs
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(p.rss_kb() for p in self.procs))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
