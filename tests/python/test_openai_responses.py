"""The Responses API through the official OpenAI Python SDK (`client.responses`): on a chat
deployment (translated both ways), on a Responses deployment (passed through), and a chat
client on a Responses deployment, among them a Copilot model served only on `/responses`."""

from __future__ import annotations

import json

from openai import OpenAI

from conftest import CHAT_MODEL, CONFIGURED_MODELS, RESPONSES_MODEL, Copilot, Mock

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def text_reply(text: str, **modifiers: object) -> dict[str, object]:
    return {"reply": {"kind": "text", "text": text}, **modifiers}


def test_create_on_a_chat_deployment(client: OpenAI, mock: Mock) -> None:
    answer = "Responses, translated to chat and back."
    mock.enqueue(text_reply(answer))

    reply = client.responses.create(
        model=CHAT_MODEL, instructions="Be brief.", input="Say something.", max_output_tokens=64
    )

    assert reply.status == "completed"
    assert reply.output_text == answer
    assert reply.usage is not None and reply.usage.output_tokens > 0
    [upstream] = mock.chat_requests()
    assert upstream["body"]["model"] == CONFIGURED_MODELS[CHAT_MODEL]
    assert upstream["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_stream_on_a_chat_deployment(client: OpenAI, mock: Mock) -> None:
    mock.enqueue(text_reply("one two three four", chunks=4))

    deltas = []
    with client.responses.stream(model=CHAT_MODEL, input="Count.") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()

    assert "".join(deltas) == "one two three four"
    assert final.status == "completed"
    assert final.output_text == "one two three four"
    assert final.usage is not None and final.usage.input_tokens > 0


def test_function_call_and_its_output(client: OpenAI, mock: Mock) -> None:
    arguments = json.dumps({"city": "Paris"})
    mock.enqueue(
        {"reply": {"kind": "tool_calls", "calls": [
            {"id": "call_weather_1", "name": "get_weather", "arguments": arguments}
        ]}}
    )  # fmt: skip
    mock.enqueue(text_reply("18 degrees and sunny."))

    first = client.responses.create(model=CHAT_MODEL, input="Weather in Paris?", tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}

    second = client.responses.create(
        model=CHAT_MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, sun"},
        ],
    )  # fmt: skip
    assert second.output_text == "18 degrees and sunny."
    upstream = mock.chat_requests()[-1]["body"]["messages"]
    assert upstream[-2]["tool_calls"][0]["id"] == call.call_id
    assert upstream[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "18C, sun"}


def test_a_responses_deployment_is_passed_through(client: OpenAI, mock: Mock) -> None:
    mock.enqueue(text_reply("native answer"))

    reply = client.responses.create(model=RESPONSES_MODEL, input="Hi", store=False)

    assert reply.output_text == "native answer"
    [upstream] = mock.requests("/v1/responses")
    assert upstream["body"] == {"model": "gpt-5.4", "input": "Hi", "store": False}


def test_a_chat_client_on_a_responses_deployment(client: OpenAI, mock: Mock) -> None:
    mock.enqueue(text_reply("answered through /responses"))

    reply = client.chat.completions.create(
        model=RESPONSES_MODEL, messages=[{"role": "user", "content": "Hi"}]
    )

    assert reply.choices[0].message.content == "answered through /responses"
    assert reply.choices[0].finish_reason == "stop"
    assert len(mock.requests("/v1/responses")) == 1


# Copilot lists it with `supported_endpoints: ["/responses"]` only (the stand-in does too) and
# refuses it on /chat/completions.
RESPONSES_ONLY_COPILOT_MODEL = "gpt-5.4"


def test_chat_completions_on_a_copilot_model_served_only_on_responses(copilot: Copilot) -> None:
    client = copilot.client()
    copilot.enqueue(text_reply("Copilot's gpt-5.4, spoken to in the Responses API."))

    reply = client.chat.completions.with_raw_response.create(
        model=RESPONSES_ONLY_COPILOT_MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=64,
    )

    assert reply.headers["x-tollgate-served-model"] == "github_copilot/gpt-5.4"
    completion = reply.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == (
        "Copilot's gpt-5.4, spoken to in the Responses API."
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    [call] = copilot.calls()
    assert call["path"] == "/responses", "never /chat/completions"
    assert call["body"]["model"] == RESPONSES_ONLY_COPILOT_MODEL
    assert call["body"]["instructions"] == "Be brief."
    assert call["body"]["max_output_tokens"] == 64


def test_a_chat_completions_stream_on_a_copilot_model_served_only_on_responses(
    copilot: Copilot,
) -> None:
    client = copilot.client()
    copilot.enqueue(text_reply("streamed from the Responses API", chunks=3))

    stream = client.chat.completions.create(
        model=RESPONSES_ONLY_COPILOT_MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed from the Responses API"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    [call] = copilot.calls()
    assert call["path"] == "/responses", "never /chat/completions"
    assert call["body"]["model"] == RESPONSES_ONLY_COPILOT_MODEL
    assert call["body"]["stream"] is True
