"""tollgate's MCP gateway (`/mcp`, `/{server}/mcp`) through the official `mcp` Python SDK:
`ClientSession` over the streamable HTTP transport, with the master key and virtual keys.

The gateway fronts `local` (a stdio mock tollgate starts) and `remote` (an HTTP mock behind
a recording relay, `mcp_remote`); see conftest.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent, TextResourceContents

from conftest import MASTER_KEY, Gateway, McpRemote

T = TypeVar("T")
# A JSON-RPC "invalid params": what tollgate answers for a tool the caller cannot see.
INVALID_PARAMS = -32602


def run(test: Callable[[], Awaitable[T]]) -> T:
    """Runs one async test body, bounded so a hung stream fails instead of stalling."""

    async def bounded() -> T:
        with anyio.fail_after(30):
            return await test()

    return anyio.run(bounded)


@asynccontextmanager
async def mcp_session(
    gateway: Gateway,
    key: str = MASTER_KEY,
    path: str = "/mcp",
    statuses: list[tuple[str, int]] | None = None,
    initialize: bool = True,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[ClientSession]:
    """A `ClientSession` on `path`, authenticated with `key`; every HTTP answer's method and
    status is appended to `statuses` when given."""

    async def note(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append((response.request.method, response.status_code))

    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
        timeout=httpx2.Timeout(20.0),
        event_hooks={"response": [note]},
    ) as http:
        async with streamable_http_client(gateway.origin + path, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                if initialize:
                    await session.initialize()
                yield session


def the_mcp_error(raised: BaseException) -> MCPError:
    """The one `MCPError` in `raised`, looking inside the exception groups anyio wraps it in."""
    found: list[MCPError] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, MCPError):
            found.append(error)
        elif isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)

    walk(raised)
    assert len(found) == 1, f"expected one MCPError in {raised!r}"
    return found[0]


def text_of(result: Any) -> str:
    assert not result.is_error, f"tool error: {result}"
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent), result
    return result.content[0].text


def new_key(gateway: Gateway, body: dict[str, Any]) -> str:
    response = httpx.post(
        f"{gateway.origin}/key/generate",
        json=body,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10.0,
    )
    assert response.status_code == 200, f"/key/generate: {response.status_code} {response.text}"
    return response.json()["key"]


def mcp_spend_records(gateway: Gateway, client_request_id: str) -> list[dict[str, Any]]:
    """The `mcp` spend records of the requests that sent `x-request-id: client_request_id`."""
    response = httpx.get(
        f"{gateway.origin}/spend/logs",
        params={"client_request_id": client_request_id},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10.0,
    )
    assert response.status_code == 200, f"/spend/logs: {response.status_code} {response.text}"
    return [r for r in response.json() if r.get("api") == "mcp"]


def test_the_master_key_lists_and_calls_tools_of_every_server(
    gateway: Gateway, mcp_remote: McpRemote
) -> None:
    async def body() -> None:
        async with mcp_session(gateway, initialize=False) as session:
            init = await session.initialize()
            assert init.server_info.name == "tollgate"
            assert init.capabilities.tools is not None

            names = [t.name for t in (await session.list_tools()).tools]
            for expected in ["local-echo", "local-add", "remote-echo", "remote-add", "remote-slow"]:
                assert expected in names, names

            echoed = await session.call_tool("local-echo", {"text": "through the SDK"})
            assert text_of(echoed) == "through the SDK"
            added = await session.call_tool("remote-add", {"a": 2, "b": 3})
            assert text_of(added) == "5"
            # The server was asked for its own tool name, not the prefixed one.
            assert mcp_remote.tool_calls()[-1] == "add", mcp_remote.tool_calls()
            # A tool's own failure is a result, not an exception.
            failed = await session.call_tool("local-fail", {})
            assert failed.is_error is True

            resources = (await session.list_resources()).resources
            assert resources, "no resources listed"
            read = await session.read_resource(resources[0].uri)
            content = read.contents[0]
            assert isinstance(content, TextResourceContents), content
            assert content.text.startswith("hello from "), content.text

            prompts = [p.name for p in (await session.list_prompts()).prompts]
            assert "local-greet" in prompts and "remote-greet" in prompts, prompts
            prompt = await session.get_prompt("remote-greet", {"name": "Ada"})
            message = prompt.messages[0]
            assert message.role == "user"
            assert isinstance(message.content, TextContent)
            assert message.content.text == "Say hello to Ada"

    run(body)


def test_progress_notifications_arrive_before_the_result(gateway: Gateway) -> None:
    async def body() -> None:
        seen: list[tuple[float, float | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total))

        async with mcp_session(gateway) as session:
            result = await session.call_tool(
                "remote-slow", {"seconds": 0.5}, progress_callback=on_progress
            )
        assert text_of(result).startswith("waited "), result
        assert len(seen) >= 2, f"progress seen: {seen}"
        progress = [p for p, _ in seen]
        assert progress == sorted(progress) and progress[-1] > progress[0], seen

    run(body)


def test_a_key_allowed_one_server_sees_and_calls_only_its_tools(
    gateway: Gateway, mcp_remote: McpRemote
) -> None:
    key = new_key(gateway, {"object_permission": {"mcp_servers": ["local"]}})
    remote_calls_before = len(mcp_remote.tool_calls())

    async def body() -> None:
        async with mcp_session(gateway, key=key) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            assert names and all(n.startswith("local-") for n in names), names
            assert text_of(await session.call_tool("local-echo", {"text": "mine"})) == "mine"
            # tollgate answers a JSON-RPC error; the SDK raises it.
            with pytest.raises(MCPError) as refused:
                await session.call_tool("remote-echo", {"text": "theirs"})
            assert refused.value.error.code == INVALID_PARAMS, refused.value.error
            assert "remote-echo" in refused.value.error.message

    run(body)
    assert len(mcp_remote.tool_calls()) == remote_calls_before, mcp_remote.tool_calls()


def test_a_wrong_key_is_refused_with_401(gateway: Gateway, mcp_remote: McpRemote) -> None:
    statuses: list[tuple[str, int]] = []
    seen_before = len(mcp_remote.messages())

    async def body() -> None:
        async with mcp_session(gateway, key="sk-not-a-key", statuses=statuses):
            pass

    # The SDK raises tollgate's JSON-RPC error from initialize, out of its task groups.
    with pytest.raises(BaseException) as raised:
        run(body)
    refused = the_mcp_error(raised.value)
    assert "Invalid API key" in refused.error.message, refused.error
    assert statuses and statuses[0] == ("POST", 401), statuses
    assert len(mcp_remote.messages()) == seen_before


def test_tool_calls_leave_spend_records(gateway: Gateway) -> None:
    client_request_id = f"mcp-sdk-spend-{uuid.uuid4()}"

    async def body() -> None:
        async with mcp_session(gateway, headers={"x-request-id": client_request_id}) as session:
            assert text_of(await session.call_tool("local-echo", {"text": "spent"})) == "spent"
            assert text_of(await session.call_tool("remote-add", {"a": 1, "b": 1})) == "2"

    run(body)
    deadline = time.monotonic() + 10.0
    new: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        new = mcp_spend_records(gateway, client_request_id)
        if len(new) >= 2:
            break
        time.sleep(0.1)
    assert len(new) == 2, new
    by_tool = {(r["model_group"], r["requested_model"]): r for r in new}
    assert set(by_tool) == {("local", "echo"), ("remote", "add")}, new
    for record in by_tool.values():
        assert record["status"] == 200, record
        assert record["outcome"] == "success", record
        assert record["prompt_tokens"] == 0, record


def test_the_per_server_endpoint_lists_unprefixed_names(gateway: Gateway) -> None:
    async def body() -> None:
        async with mcp_session(gateway, path="/local/mcp") as session:
            names = [t.name for t in (await session.list_tools()).tools]
            assert "echo" in names and "add" in names, names
            assert not any("-" in n for n in names), names
            assert text_of(await session.call_tool("echo", {"text": "direct"})) == "direct"

    run(body)
