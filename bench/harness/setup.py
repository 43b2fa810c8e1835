"""What every mode of `bench/run` does before it measures: build the binaries, make and drop
PostgreSQL databases, raise the descriptor limit, wait for a quiet machine."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_for_quiet(max_load: float, limit: float) -> float:
    start = time.monotonic()
    while (load := loadavg()) >= max_load and time.monotonic() - start < limit:
        print(f"  load average {load:.2f} ≥ {max_load}: waiting (others are compiling?)",
              flush=True)
        time.sleep(15)
    return load


def build(profile: str) -> Path:
    cmd = ["cargo", "build", "-p", "tollgate", "-p", "tollgate-testkit", "-p", "tollgate-bench",
           "--bins"]
    if profile == "release":
        cmd.append("--release")
    print(f"==> {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / profile


def create_database(admin_url: str, name: str) -> str:
    subprocess.run(["psql", admin_url, "-XqAt", "-c", f'CREATE DATABASE "{name}"'],
                   check=True, capture_output=True, text=True, timeout=60)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    subprocess.run(["psql", admin_url, "-XqAt", "-c",
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                   check=False, capture_output=True, text=True, timeout=60)


def raise_fd_limit() -> None:
    # 1,000 streams need ~2,000 descriptors in the gateway and 1,000 in the load generator.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
