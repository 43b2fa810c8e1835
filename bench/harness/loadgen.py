"""Runs `tollgate-loadgen` and returns its per-target results."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from .procs import pin

CHAT_BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 32,
}
ANTHROPIC_BODY = {
    "model": "gpt-4o-mini",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "Say hello."}],
}


def chat_target(name: str, base: str, headers: dict | None = None, stream: bool = False, *,
                path: str = "/v1/chat/completions", model: str | None = None) -> dict:
    """An OpenAI chat completion against `base` + `path` (`base` is a URL without `/v1`), for
    `model` when given instead of the one every other row asks for.

    Streams ask for the usage chunk, as most SDK users do: a gateway that asks the upstream
    for usage itself and removes the chunk again for a client that did not ask would show a
    gap the size of one upstream interval before `[DONE]` that no real upstream has."""
    body = (dict(CHAT_BODY, stream=True, stream_options={"include_usage": True}) if stream
            else CHAT_BODY)
    if model:
        body = dict(body, model=model)
    return {
        "name": name,
        "url": f"{base}{path}",
        "headers": headers or {},
        "body_json": body,
        "mode": "sse" if stream else "json",
        **({"done_marker": "[DONE]"} if stream else {}),
    }


def anthropic_target(name: str, base: str, key: str | None, stream: bool = False) -> dict:
    """An Anthropic Messages request against `base`."""
    headers = {"anthropic-version": "2023-06-01"}
    if key:
        headers["x-api-key"] = key
    body = dict(ANTHROPIC_BODY, stream=True) if stream else ANTHROPIC_BODY
    return {
        "name": name,
        "url": f"{base}/v1/messages",
        "headers": headers,
        "body_json": body,
        "mode": "sse" if stream else "json",
        **({"done_marker": "message_stop"} if stream else {}),
    }


class Loadgen:
    """The load generator binary, pinned to its core."""

    def __init__(self, binary: Path, cores: str | None, work: Path):
        self.binary = binary
        self.cores = cores
        self.work = work
        self.runs: list[dict] = []

    def run(self, targets: list[dict], *, rate: float | None = None,
            connections: int | None = None, concurrency: int | None = None,
            duration: float = 5.0, warmup: float = 1.0, rounds: int = 1,
            requests: int | None = None, timeout: float = 30.0) -> dict[str, dict]:
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.work,
                                         delete=False) as f:
            json.dump(targets, f)
            targets_file = f.name
        argv = pin(self.cores) + [str(self.binary), "--targets", targets_file,
                                  "--duration", str(duration), "--warmup", str(warmup),
                                  "--rounds", str(rounds), "--timeout", str(timeout)]
        if rate is not None:
            argv += ["--rate", str(rate)]
            if connections:
                argv += ["--connections", str(connections)]
        else:
            argv += ["--concurrency", str(concurrency or 1)]
        if requests is not None:
            argv += ["--requests", str(requests)]
        # Bounded: every phase ends by its schedule; in-flight requests by their timeout.
        per_phase = (requests and 60.0) or (warmup + duration)
        limit = rounds * len(targets) * (per_phase + timeout) + 60
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
        Path(targets_file).unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"tollgate-loadgen failed ({proc.returncode}): {proc.stderr.strip()}")
        report = json.loads(proc.stdout)
        self.runs.append(report)
        return {r["name"]: r for r in report["results"]}
