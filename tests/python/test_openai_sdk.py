"""tollgate through the official OpenAI Python SDK, against the mock upstream.

Each test programs the mock's next replies, calls the gateway with the SDK and checks both
what the SDK parsed and what the mock received.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI

from conftest import (
    CHAT_MODEL,
    CONFIGURED_MODELS,
    CUT_MODEL,
    EMBEDDING_MODEL,
    MASTER_KEY,
    RATE_LIMITED_MODEL,
    UPSTREAM_ERROR_MODEL,
    UPSTREAM_KEY,
    Gateway,
    Mock,
)

USER = [{"role": "user", "content": "Say something."}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def text_reply(text: str, **modifiers: object) -> dict[str, object]:
    return {"reply": {"kind": "text", "text": text}, **modifiers}


def openai_error_body(message: str, kind: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- completions -------------------------------------------------------------------------


def test_chat_completion_returns_the_upstream_answer(client: OpenAI, mock: Mock) -> None:
    answer = "Tollgate relayed this sentence unchanged."
    mock.enqueue(text_reply(answer))

    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=USER, temperature=0.25, max_tokens=50
    )
    completion = raw.parse()

    assert raw.status_code == 200
    served = raw.headers.get("x-tollgate-served-model")
    assert served, f"no x-tollgate-served-model header in {dict(raw.headers)}"
    assert CONFIGURED_MODELS[CHAT_MODEL] in served
    assert raw.headers.get("x-tollgate-attempts") == "1"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == answer
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    [upstream] = mock.chat_requests()
    assert upstream["body"]["model"] == CONFIGURED_MODELS[CHAT_MODEL]
    assert upstream["body"]["messages"] == USER
    assert upstream["body"]["temperature"] == 0.25
    # The gateway authenticates upstream with the deployment's key, never the caller's.
    headers = {name: value for name, value in upstream["headers"]}
    assert headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert MASTER_KEY not in json.dumps(upstream)


@pytest.mark.parametrize("include_usage", [True, False], ids=["with-usage", "without-usage"])
def test_streamed_completion(client: OpenAI, mock: Mock, include_usage: bool) -> None:
    answer = "one two three four five six"
    mock.enqueue(text_reply(answer))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}

    stream = client.chat.completions.create(model=CHAT_MODEL, messages=USER, stream=True, **extra)
    chunks = list(stream)

    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == answer
    assert len(deltas) > 1, "the answer arrived in one piece: not streamed"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1, f"expected one usage chunk, got {len(usage_chunks)}"
        usage = usage_chunks[0]
        assert usage.choices == []
        assert usage.usage is not None and usage.usage.completion_tokens > 0
        assert chunks[-1] is usage, "the usage chunk must come last"
    else:
        assert usage_chunks == [], "usage was sent although the client did not ask for it"


def test_tool_call_round_trip(client: OpenAI, mock: Mock) -> None:
    arguments = json.dumps({"city": "Paris"})
    mock.enqueue(
        {"reply": {"kind": "tool_calls", "calls": [
            {"id": "call_weather_1", "name": "get_weather", "arguments": arguments}
        ]}}
    )  # fmt: skip
    final_answer = "It is 18 degrees and sunny in Paris."
    mock.enqueue(text_reply(final_answer))

    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id == "call_weather_1"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    tool_result = json.dumps({"temperature_c": 18, "sky": "sunny"})
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": tool_result})
    second = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == final_answer
    assert second.choices[0].finish_reason == "stop"

    first_upstream, second_upstream = mock.chat_requests()
    assert first_upstream["body"]["tools"][0]["function"]["name"] == "get_weather"
    sent = second_upstream["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == "call_weather_1"
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[2]["tool_call_id"] == "call_weather_1"
    assert sent[2]["content"] == tool_result


def test_streamed_tool_call_arguments_reassemble(client: OpenAI, mock: Mock) -> None:
    arguments = json.dumps({"city": "Lisbon", "unit": "celsius"})
    mock.enqueue(
        {"reply": {"kind": "tool_calls", "calls": [
            {"id": "call_s1", "name": "get_weather", "arguments": arguments}
        ]}, "chunks": 5}
    )  # fmt: skip

    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=USER, tools=[WEATHER_TOOL], stream=True
    )
    ids, names, fragments, finish = [], [], [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            assert delta_call.index == 0
            if delta_call.id:
                ids.append(delta_call.id)
            if delta_call.function and delta_call.function.name:
                names.append(delta_call.function.name)
            if delta_call.function and delta_call.function.arguments:
                fragments.append(delta_call.function.arguments)
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)

    assert ids == ["call_s1"]
    assert names == ["get_weather"]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "Lisbon", "unit": "celsius"}
    assert finish == ["tool_calls"]


# --- embeddings and models ---------------------------------------------------------------


def test_embeddings_match_the_upstream_vectors(client: OpenAI, mock: Mock) -> None:
    inputs = ["hello world", "a rather different sentence"]
    # The same request straight to the mock gives the reference vectors (the mock's
    # embeddings are a deterministic function of the text).
    direct = OpenAI(base_url=mock.base_url, api_key="unused", max_retries=0, timeout=10.0)
    expected = direct.embeddings.create(model=EMBEDDING_MODEL, input=inputs)
    mock.reset()

    result = client.embeddings.create(model=EMBEDDING_MODEL, input=inputs)

    assert [d.index for d in result.data] == [0, 1]
    dims = len(expected.data[0].embedding)
    assert dims > 0
    assert [len(d.embedding) for d in result.data] == [dims, dims]
    assert result.data[0].embedding != result.data[1].embedding
    assert [d.embedding for d in result.data] == [d.embedding for d in expected.data]
    assert result.usage.prompt_tokens > 0
    [upstream] = mock.requests("/v1/embeddings")
    assert upstream["body"]["input"] == inputs
    assert upstream["body"]["model"] == CONFIGURED_MODELS[EMBEDDING_MODEL]


def test_models_list_contains_the_configured_names(client: OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert set(CONFIGURED_MODELS) <= set(ids), f"listed: {ids}"
    assert len(ids) == len(set(ids)), f"duplicates in {ids}"


# --- typed errors ------------------------------------------------------------------------


def test_unknown_model_is_not_found(client: OpenAI, mock: Mock) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model-xyz", messages=USER)
    assert caught.value.status_code == 404
    assert "no-such-model-xyz" in caught.value.message
    assert mock.chat_requests() == []


def test_wrong_key_is_an_authentication_error(gateway: Gateway, mock: Mock) -> None:
    client = gateway.client(api_key="sk-definitely-not-the-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=CHAT_MODEL, messages=USER)
    assert caught.value.status_code == 401
    assert isinstance(caught.value.body, dict) and caught.value.body.get("message")
    assert mock.chat_requests() == []


def test_upstream_rate_limit_passes_through(client: OpenAI, mock: Mock) -> None:
    message = "Rate limit reached for gpt-4o-mini: try again in 7s (mock upstream)."
    error = {
        "reply": {
            "kind": "error",
            "status": 429,
            "body": openai_error_body(message, "rate_limit_error", "rate_limit_exceeded"),
            "retry_after": 7,
        }
    }
    # As the default, so a gateway-side retry meets the same 429 instead of a success.
    mock.set_default(error)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=RATE_LIMITED_MODEL, messages=USER)

    assert caught.value.status_code == 429
    assert message in caught.value.message
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers.get("retry-after") == "7"
    assert len(mock.chat_requests()) >= 1


def test_upstream_bad_request_keeps_its_wording(client: OpenAI, mock: Mock) -> None:
    message = "This model's maximum context length is 128000 tokens (mock upstream)."
    mock.enqueue(
        {"reply": {"kind": "error", "status": 400, "body": openai_error_body(
            message, "invalid_request_error", "context_length_exceeded"
        )}}
    )  # fmt: skip

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=UPSTREAM_ERROR_MODEL, messages=USER)

    assert caught.value.status_code == 400
    assert message in caught.value.message
    assert caught.value.code == "context_length_exceeded"
    assert len(mock.chat_requests()) == 1


def test_malformed_request_is_a_bad_request(client: OpenAI, mock: Mock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=USER, extra_body={"messages": "not a list"}
        )
    assert caught.value.status_code == 400
    assert "messages" in caught.value.message
    # Rejected by the gateway itself: nothing reached the upstream.
    assert mock.chat_requests() == []


def test_malformed_json_is_a_bad_request_in_openai_shape(gateway: Gateway, mock: Mock) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
        content=b'{"model": "gpt-4o-mini", "messages": [',
        timeout=10.0,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert mock.chat_requests() == []


def test_stream_cut_mid_way_raises_an_api_error(client: OpenAI, mock: Mock) -> None:
    answer = "alpha beta gamma delta epsilon zeta"
    # The mock sends the role chunk and the first word, then drops the connection.
    mock.enqueue(text_reply(answer, cut_after_chunks=2))

    stream = client.chat.completions.create(model=CUT_MODEL, messages=USER, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    # An error event from the gateway, not a transport failure or a silent end.
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert isinstance(caught.value.body, dict) and caught.value.body.get("message")
    text = "".join(received)
    assert text, "no content arrived before the cut"
    assert answer.startswith(text) and text != answer
