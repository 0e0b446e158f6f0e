"""Serving a Tool-N1 checkpoint: the chat template renders the RL training prompt, and a real ``vllm serve`` (vLLM's
CPU build) with the plugin in serving/ answers OpenAI ``tool_calls`` with the reasoning kept apart.

The vLLM test starts the real server on the random tiny model (scripts/tiny_model.py) and forces the reply text with
vLLM's structured outputs (a random model writes no tool call of its own), so what is tested is the serving path:
chat template -> generation -> reasoning parser -> tool parser -> OpenAI response, streaming and not. Run it in the
vLLM environment::

    .venv/rl-vllm/bin/python -m pytest -m vllm_env tests/test_serving_vllm.py     # ~5-10 min on 2 loaded cores
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tool_n1.prompts import chatml, training_system_prompt

TEMPLATE = REPO / "serving" / "tool_n1_chat_template.jinja"
PLUGIN = REPO / "serving" / "tool_n1_vllm.py"
TOOL = {
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
THOUGHT = "The user wants the weather."
REPLY = f"<think>{THOUGHT}</think> <tool_call>{json.dumps(CALLS)}</tool_call>"
SERVER_START_TIMEOUT_S = 900


def _tokenizer(tmp_path: Path):
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(tmp_path / "tok")
    tokenizer.chat_template = TEMPLATE.read_text(encoding="utf-8")
    return tokenizer


@pytest.mark.rl_env
def test_chat_template_renders_the_training_prompt(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    tools = [{"type": "function", "function": TOOL}]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text == chatml([{"role": "system", "content": training_system_prompt([TOOL])}, *messages])
    preamble = "You are a weather assistant. Here is a list of functions in JSON format that you can invoke:\n"
    own = [{"role": "system", "content": preamble}, *messages]
    text = tokenizer.apply_chat_template(own, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text == chatml([{"role": "system", "content": training_system_prompt([TOOL], preamble)}, *messages])


@pytest.mark.rl_env
def test_chat_template_renders_earlier_calls_and_tool_results(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": '{"temp": 21}'},
        {"role": "tool", "content": '{"sky": "clear"}'},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert (
        '<|im_start|>assistant\n<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'
        '<|im_end|>\n<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response>\n<tool_response>\n'
        '{"sky": "clear"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'
    ) in text
    assert "<tools>" not in text  # no tools in the request: no tool prompt


def _load_plugin():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tool_n1_vllm", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.vllm_env
@pytest.mark.parametrize(
    "reply, reasoning, content",
    [
        (REPLY, THOUGHT, " "),
        (f"<tool_call>{json.dumps(CALLS)}</tool_call>", "", ""),  # a No-Reason model: no <think> at all
        (f"<think>{THOUGHT}</think>Calling.<tool_call>{json.dumps(CALLS[0])}</tool_call>", THOUGHT, "Calling."),
    ],
)
def test_vllm_streaming_parser_over_every_chunking(tmp_path, reply, reasoning, content):
    # vLLM's own streaming driver (DelegatingParser.parse_delta) with our two parsers, the reply cut into deltas of
    # every size from one token to all of them: the reasoning, the content and the one call always come out whole.
    pytest.importorskip("vllm")
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.parser.abstract_parser import DelegatingParser

    plugin = _load_plugin()
    tokenizer = _tokenizer(tmp_path)

    class Parser(DelegatingParser):
        reasoning_parser_cls = plugin.ToolN1ReasoningParser
        tool_parser_cls = plugin.ToolN1ToolParser

    request = ChatCompletionRequest(
        model="m", messages=[{"role": "user", "content": "q"}], tools=[{"type": "function", "function": TOOL}]
    )
    prompt = tokenizer.apply_chat_template(
        request.messages, tools=[{"type": "function", "function": TOOL}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    ids = tokenizer.encode(reply, add_special_tokens=False)
    for size in range(1, len(ids) + 1):
        parser = Parser(tokenizer, request.tools)
        got_reasoning, got_content, calls, sent = "", "", [], []
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            before = tokenizer.decode(sent)
            sent += chunk
            delta_text = tokenizer.decode(sent)[len(before) :]
            finished = start + size >= len(ids)
            delta = parser.parse_delta(delta_text, chunk, request, prompt_token_ids=prompt_ids, finished=finished)
            if delta is not None:
                got_reasoning += delta.reasoning or ""
                got_content += delta.content or ""
                calls += [(c.function.name, json.loads(c.function.arguments)) for c in delta.tool_calls or []]
        assert (got_reasoning, got_content.strip(), calls) == (
            reasoning,
            content.strip(),
            [("get_weather", CALLS[0]["arguments"])],
        ), size


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(base_url: str, body: dict, timeout: float = 300) -> bytes:
    request = urllib.request.Request(
        base_url + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    pytest.importorskip("vllm")
    from tiny_model import build_tiny_qwen2, build_tiny_tokenizer

    root = tmp_path_factory.mktemp("serving")
    model = root / "model"
    build_tiny_qwen2(model, build_tiny_tokenizer(model), hidden=256)  # head_dim 64: vLLM's CPU attention needs it
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "vllm"),
        "serve",
        str(model),
        "--served-model-name",
        "tool-n1-tiny",
        "--port",
        str(port),
        "--max-model-len",
        "4096",
        "--dtype",
        "float32",
        "--max-num-seqs",
        "2",
        "--enforce-eager",
        "--chat-template",
        str(TEMPLATE),
        "--enable-auto-tool-choice",
        "--tool-parser-plugin",
        str(PLUGIN),
        "--tool-call-parser",
        "tool_n1",
        "--reasoning-parser-plugin",
        str(PLUGIN),
        "--reasoning-parser",
        "tool_n1",
        # structured outputs force the reply from its first token, reasoning included
        "--structured-outputs-config",
        '{"enable_in_reasoning": true}',
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    log = open(root / "serve.log", "w")  # noqa: SIM115 - closed in the teardown
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(base_url + "/models", timeout=5):
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "serve.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"vllm serve did not come up (exit {process.poll()}):\n{tail}")
            time.sleep(2)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def _request(stream: bool) -> dict:
    return {
        "model": "tool-n1-tiny",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": TOOL}],
        "temperature": 0,
        "max_tokens": 256,
        "structured_outputs": {"choice": [REPLY]},
        "stream": stream,
    }


@pytest.mark.vllm_env
def test_vllm_serve_returns_tool_calls_and_reasoning(vllm_server):
    message = json.loads(_post(vllm_server, _request(stream=False)))["choices"][0]
    assert message["finish_reason"] == "tool_calls", message
    calls = message["message"]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    reasoning = message["message"].get("reasoning") or message["message"].get("reasoning_content")
    assert reasoning == THOUGHT
    assert not (message["message"].get("content") or "").strip()


@pytest.mark.vllm_env
def test_vllm_serve_streams_tool_calls_and_reasoning(vllm_server):
    raw = _post(vllm_server, _request(stream=True)).decode()
    reasoning, content, calls = "", "", {}
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        delta = json.loads(line[6:])["choices"][0]["delta"]
        reasoning += delta.get("reasoning") or delta.get("reasoning_content") or ""
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
            function = call.get("function") or {}
            entry["name"] += function.get("name") or ""
            entry["arguments"] += function.get("arguments") or ""
    assert reasoning.strip() == THOUGHT
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("get_weather", {"city": "Paris"})]
    assert not content.strip()
