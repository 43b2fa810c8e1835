"""tollgate's Anthropic Messages API through the official `anthropic` Python SDK.

The gateway translates each request for the OpenAI-format mock upstream and the mock's
answer back into Anthropic's shape; each test checks what the SDK parsed and what the mock
received.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic

from conftest import (
    CONFIGURED_MODELS,
    MASTER_KEY,
    MESSAGES_MODEL,
    MESSAGES_RATE_LIMITED_MODEL,
    UPSTREAM_KEY,
    Gateway,
    Mock,
)

USER = [{"role": "user", "content": "Say something."}]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def text_reply(text: str, **modifiers: object) -> dict[str, object]:
    return {"reply": {"kind": "text", "text": text}, **modifiers}


def tool_reply(
    call_id: str, name: str, arguments: dict[str, Any], **modifiers: object
) -> dict[str, object]:
    calls = [{"id": call_id, "name": name, "arguments": json.dumps(arguments)}]
    return {"reply": {"kind": "tool_calls", "calls": calls}, **modifiers}


def sdk(gateway: Gateway, **kwargs: Any) -> Anthropic:
    kwargs.setdefault("api_key", MASTER_KEY)
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 20.0)
    # The SDK appends /v1/messages to the origin itself.
    return Anthropic(base_url=gateway.origin, **kwargs)


@pytest.fixture
def claude(gateway: Gateway) -> Anthropic:
    return sdk(gateway)


# --- messages ----------------------------------------------------------------------------


def test_message_returns_the_upstream_answer(claude: Anthropic, mock: Mock) -> None:
    answer = "Tollgate translated this sentence both ways."
    mock.enqueue(text_reply(answer))

    raw = claude.messages.with_raw_response.create(
        model=MESSAGES_MODEL,
        max_tokens=200,
        system="You are terse.",
        messages=USER,
        stop_sequences=["END"],
        metadata={"user_id": "user-1234"},
    )
    message = raw.parse()

    assert raw.status_code == 200
    assert CONFIGURED_MODELS[MESSAGES_MODEL] in (raw.headers.get("x-tollgate-served-model") or "")
    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == answer
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0

    [upstream] = mock.chat_requests()
    body = upstream["body"]
    assert body["model"] == CONFIGURED_MODELS[MESSAGES_MODEL]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say something."},
    ]
    assert body["max_tokens"] == 200
    assert body["stop"] == ["END"]
    assert body["user"] == "user-1234"
    headers = {name: value for name, value in upstream["headers"]}
    assert headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert MASTER_KEY not in json.dumps(upstream)


def test_bearer_auth_token_is_accepted_too(gateway: Gateway, mock: Mock) -> None:
    mock.enqueue(text_reply("hello bearer"))
    client = sdk(gateway, api_key=None, auth_token=MASTER_KEY)
    message = client.messages.create(model=MESSAGES_MODEL, max_tokens=50, messages=USER)
    assert message.content[0].text == "hello bearer"


def test_stream_delivers_text_deltas_and_final_usage(claude: Anthropic, mock: Mock) -> None:
    answer = "one two three four five six"
    mock.enqueue(text_reply(answer))

    with claude.messages.stream(model=MESSAGES_MODEL, max_tokens=200, messages=USER) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(deltas) == answer
    assert len(deltas) > 1, "the answer arrived in one piece: not streamed"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == answer
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens == 6, "one token per word, as the mock counts"

    [upstream] = mock.chat_requests()
    assert upstream["body"]["stream"] is True


def test_tool_use_round_trip(claude: Anthropic, mock: Mock) -> None:
    mock.enqueue(tool_reply("toolu_weather_1", "get_weather", {"city": "Paris"}))
    final_answer = "It is 18 degrees and sunny in Paris."
    mock.enqueue(text_reply(final_answer))

    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = claude.messages.create(
        model=MESSAGES_MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL]
    )

    assert first.stop_reason == "tool_use"
    [tool_use] = [block for block in first.content if block.type == "tool_use"]
    assert tool_use.id == "toolu_weather_1"
    assert tool_use.name == "get_weather"
    assert tool_use.input == {"city": "Paris"}

    result = json.dumps({"temperature_c": 18, "sky": "sunny"})
    assistant = [block.model_dump(exclude_none=True) for block in first.content]
    messages.append({"role": "assistant", "content": assistant})
    answer = {"type": "tool_result", "tool_use_id": tool_use.id, "content": result}
    messages.append({"role": "user", "content": [answer]})
    second = claude.messages.create(
        model=MESSAGES_MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL]
    )

    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text == final_answer

    first_upstream, second_upstream = mock.chat_requests()
    assert first_upstream["body"]["tools"][0]["function"]["name"] == "get_weather"
    parameters = first_upstream["body"]["tools"][0]["function"]["parameters"]
    assert parameters == WEATHER_TOOL["input_schema"]
    sent = second_upstream["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == "toolu_weather_1"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[2]["tool_call_id"] == "toolu_weather_1"
    assert sent[2]["content"] == result


def test_streamed_tool_use_input_reassembles(claude: Anthropic, mock: Mock) -> None:
    arguments = {"city": "Lisbon", "unit": "celsius"}
    mock.enqueue(tool_reply("toolu_s1", "get_weather", arguments, chunks=5))

    with claude.messages.stream(
        model=MESSAGES_MODEL, max_tokens=200, messages=USER, tools=[WEATHER_TOOL]
    ) as stream:
        fragments = [
            event.partial_json
            for event in stream
            if event.type == "input_json" and event.partial_json
        ]
        final = stream.get_final_message()

    assert len(fragments) > 1, "the tool input arrived in one piece: not streamed"
    assert final.stop_reason == "tool_use"
    [tool_use] = [block for block in final.content if block.type == "tool_use"]
    assert (tool_use.id, tool_use.name) == ("toolu_s1", "get_weather")
    assert tool_use.input == arguments


# --- errors ------------------------------------------------------------------------------


def test_unknown_model_is_not_found(claude: Anthropic, mock: Mock) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model-xyz", max_tokens=10, messages=USER)
    assert caught.value.status_code == 404
    assert "no-such-model-xyz" in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert body["error"]["type"] == "not_found_error"
    assert mock.chat_requests() == []


def test_wrong_key_is_an_authentication_error(gateway: Gateway, mock: Mock) -> None:
    client = sdk(gateway, api_key="sk-definitely-not-the-key")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model=MESSAGES_MODEL, max_tokens=10, messages=USER)
    assert caught.value.status_code == 401
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "authentication_error", body
    assert mock.chat_requests() == []


def test_upstream_rate_limit_is_a_rate_limit_error(claude: Anthropic, mock: Mock) -> None:
    message = "Rate limit reached: try again in 7s (mock upstream)."
    error = {
        "reply": {
            "kind": "error",
            "status": 429,
            "body": {
                "error": {
                    "message": message,
                    "type": "rate_limit_error",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            "retry_after": 7,
        }
    }
    # As the default, so a gateway-side retry meets the same 429 instead of a success.
    mock.set_default(error)

    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=MESSAGES_RATE_LIMITED_MODEL, max_tokens=10, messages=USER)

    assert caught.value.status_code == 429
    assert message in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert body["error"] == {"type": "rate_limit_error", "message": message}
    assert len(mock.chat_requests()) >= 1
