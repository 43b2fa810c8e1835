"""The mock upstream (`tollgate-mock` from testkit) and the replies each scenario programs."""

from __future__ import annotations

from .gateways import Ctx
from .procs import Proc, http

# 64 deltas of 4 characters: the mock splits a text into `chunks` even pieces.
STREAM_TEXT = "tok " * 64
STREAM_CHUNKS = 64


def start(ctx: Ctx) -> Proc:
    proc = Proc("mock", [str(ctx.bins / "tollgate-mock"), "--port", "0", "--record-limit", "0"],
                ctx.logs, cores=ctx.mock_cores, ready_line="READY")
    line = proc.wait_line("READY ", 30)
    ctx.mock_url = line.split()[1].rstrip("/")
    return proc


def reply(ctx: Ctx, *, delay_ms: int = 0, chunk_interval_ms: int = 0,
          stream_text: bool = False, chunks: int = STREAM_CHUNKS) -> None:
    """Sets the mock's default reply (what every request gets) for the next scenario."""
    spec: dict = {"delay_ms": delay_ms, "chunk_interval_ms": chunk_interval_ms}
    if stream_text:
        spec["reply"] = {"kind": "text", "text": STREAM_TEXT}
        spec["chunks"] = chunks
    status, body = http("POST", f"{ctx.mock_url}/__mock/default", spec)
    if status >= 300:
        raise RuntimeError(f"mock: /__mock/default answered {status}: {body}")


def start_github(ctx: Ctx) -> Proc:
    """The GitHub/Copilot stand-in (`tollgate-mock --github`) on the mock's cores, keeping no
    record of calls (as the OpenAI mock, so the Copilot row's upstream does no extra work);
    its default reply answers at once, which is all the Copilot row measures."""
    proc = Proc("copilot-mock", [str(ctx.bins / "tollgate-mock"), "--github", "--port", "0",
                                 "--record-limit", "0"],
                ctx.logs, cores=ctx.mock_cores, ready_line="READY")
    line = proc.wait_line("READY ", 30)
    ctx.github_url = line.split()[1].rstrip("/")
    return proc
