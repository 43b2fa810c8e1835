"""The Responses API through the official OpenAI Python SDK (`client.responses`): on a chat
deployment (translated both ways), on a Responses deployment (passed through), and a chat
client on a Responses deployment."""

from __future__ import annotations

import json

from openai import OpenAI

from conftest import CHAT_MODEL, CONFIGURED_MODELS, RESPONSES_MODEL, Mock

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
