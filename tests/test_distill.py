"""data_process/distill_data.py against a local OpenAI-compatible stand-in (tool_n1.openai_stub): CPU, loopback only.

Covers fault handling (5xx, 429 + Retry-After, timeouts, malformed and truncated bodies, dropped connections),
``reasoning_content`` vs inline think, the reward filter counts, real request overlap, SIGKILL-and-resume of the
real CLI, torn-line repair, ``--retry-failed``, and that the API key never reaches any output.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("tqdm")

import distill_data  # noqa: E402  (data_process/ is on sys.path via tests/conftest.py)
from resumable_jsonl import ResumableJsonl  # noqa: E402
from teacher_client import wrap_reasoning  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tool_n1.cli import scrub  # noqa: E402
from tool_n1.openai_client import parse_chat_completion, retry_after_seconds  # noqa: E402
from tool_n1.openai_stub import Action, OpenAIStub  # noqa: E402
from tool_n1.prompts import distillation_system_prompt, training_system_prompt  # noqa: E402

SCRIPT = REPO / "data_process" / "distill_data.py"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def calls(city: str, name: str = "get_weather") -> str:
    return json.dumps([{"name": name, "arguments": {"city": city}}])


def good(city: str) -> str:
    return f"<think>The user wants the weather in {city}.</think> <tool_call>{calls(city)}</tool_call>"


def record(query: str, city: str, source: str = "toolace_single_turn", **extra) -> dict:
    answer = [{"name": "get_weather", "arguments": {"city": city}}]
    return {
        "id": source,
        "tools": TOOLS,
        "conversations": [{"from": "human", "value": query}, {"from": "function_call", "value": json.dumps(answer)}],
        "answer": answer,
        "raw_system": "You are a helpful assistant. Here is a list of functions in JSON format that you can invoke:\n",
        **extra,
    }


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "torn last line"
    return [json.loads(line) for line in data.splitlines()]


def fast_flags(base_url: str, inp: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--input",
        str(inp),
        "--output",
        str(out),
        "--base-url",
        base_url,
        "--model",
        "stub-r1",
        "--api-key-env",
        "DISTILL_TEST_KEY",
        "--timeout",
        "0.5",
        "--max-retries",
        "2",
        "--backoff-base",
        "0.01",
        "--backoff-max",
        "0.05",
        "--no-progress",
        *extra,
    ]


@pytest.fixture
def key(monkeypatch) -> str:
    value = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("DISTILL_TEST_KEY", value)
    return value


def test_faults_reasoning_and_filter_counts(tmp_path, key, capsys):
    plans = {
        "inline": [Action.ok(good("Paris"))],
        "separate": [Action.ok(f"<tool_call>{calls('Rome')}</tool_call>", reasoning="Rome, so get_weather.")],
        "r5xx": [Action.status(500), Action.status(503), Action.ok(good("Oslo"))],
        "r429": [Action.status(429, headers={"Retry-After": "1"}), Action.ok(good("Bern"))],
        "slow": [Action.slow(1.5, good("Kyiv")), Action.ok(good("Kyiv"))],
        "malformed": [Action.malformed(), Action.ok(good("Riga"))],
        "nochoices": [Action.no_choices(), Action.ok(good("Rabat"))],
        "truncated": [Action.truncated(), Action.ok(good("Lima"))],
        "dropped": [Action.drop(), Action.ok(good("Baku"))],
        "always500": [Action.status(500)],
        "bad400": [Action.status(400)],
        "nothink": [Action.ok(f"<tool_call>{calls('Doha')}</tool_call>")],
        "wrongargs": [Action.ok(good("Nice"))],
        "wrongname": [Action.ok(f"<think>x</think><tool_call>{calls('Oran', 'get_time')}</tool_call>")],
        "nocall": [Action.ok("<think>I cannot help.</think> Sorry.")],
    }
    cities = {
        "inline": "Paris",
        "separate": "Rome",
        "r5xx": "Oslo",
        "r429": "Bern",
        "slow": "Kyiv",
        "malformed": "Riga",
        "nochoices": "Rabat",
        "truncated": "Lima",
        "dropped": "Baku",
        "nothink": "Doha",
        "wrongargs": "Cannes",
        "wrongname": "Oran",
    }
    records = [record(q, cities.get(q, "X")) for q in plans] + [record("other source", "X", source="xlam")]
    inp, out = write_records(tmp_path / "in.jsonl", records), tmp_path / "out.jsonl"
    with OpenAIStub(plans) as stub:
        flags = fast_flags(
            stub.base_url, inp, out, "--concurrency", "16", "--temperature", "0.6", "--max-tokens", "64"
        )
        assert distill_data.main(flags) == 0
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert summary["selected"] == len(plans) and summary["skipped_records"] == {"not_selected": 1}
    run = summary["this_run"]
    assert (run["kept"], run["dropped"], run["failed"]) == (9, 4, 2)
    assert run["dropped_by_reason"] == {
        "missing_think_tags": 1,
        "arguments_mismatch": 1,
        "names_mismatch": 1,
        "tool_call_not_parsed": 1,
    }
    assert run["failed_by_reason"] == {"http_500": 1, "http_400": 1}
    assert summary["total"]["lines"] == len(plans)

    lines = {line["query"]: line for line in read_lines(out)}
    assert len(lines) == len(plans)
    assert lines["inline"]["output"] == good("Paris") and lines["inline"]["reasoning_content"] is None
    assert (
        lines["separate"]["output"] == f"<think>Rome, so get_weather.</think>\n<tool_call>{calls('Rome')}</tool_call>"
    )
    assert lines["separate"]["reasoning_content"] == "Rome, so get_weather."
    assert lines["r5xx"]["retries"] == {"http_500": 1, "http_503": 1} and lines["r5xx"]["attempts"] == 3
    for query, reason in [
        ("slow", "timeout"),
        ("malformed", "malformed_response"),
        ("nochoices", "malformed_response"),
        ("truncated", "connection_error"),
        ("dropped", "connection_error"),
        ("r429", "http_429"),
    ]:
        assert lines[query]["status"] == "kept" and lines[query]["retries"] == {reason: 1}, query
    assert lines["always500"]["attempts"] == 3 and lines["always500"]["output"] is None
    assert lines["bad400"]["attempts"] == 1, "a 4xx other than 408/409/429 is not retried"
    assert lines["wrongargs"]["reward"]["names_match"] == 1.0 and lines["wrongargs"]["reward"]["score"] == 0.0

    # Retry-After honoured: the retry arrived at least ~1 s after the 429 went out.
    first, second = stub.state.requests_for("r429")[:2]
    assert second.started - first.finished >= 0.9
    # The exact original prompt was sent and hashed; sampling flags went out and were recorded.
    sent = stub.state.requests_for("inline")[0].body
    assert sent["messages"][0] == {"role": "system", "content": distillation_system_prompt(TOOLS)}
    assert sent["temperature"] == 0.6 and sent["max_tokens"] == 64 and sent["model"] == "stub-r1"
    line = lines["inline"]
    assert line["prompt"]["sha256"] == hashlib.sha256(distillation_system_prompt(TOOLS).encode()).hexdigest()
    assert line["sampling"]["temperature"] == 0.6 and line["sampling"]["max_tokens"] == 64
    assert line["teacher"] == {
        "model": "stub-r1",
        "base_url_host": stub.base_url.split("/")[2],
        "response_model": "stub-r1",
    }
    assert key not in out.read_text() and key not in capsys.readouterr().out


def test_api_key_never_leaks(tmp_path, key):
    plans = {"ok": [Action.ok(good("Paris"))], "echo400": [Action.echo_auth(400)], "echo500": [Action.echo_auth(500)]}
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in plans])
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, DISTILL_TEST_KEY=key)
    with OpenAIStub(plans) as stub:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *fast_flags(stub.base_url, inp, out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert all(r.authorization == f"Bearer {key}" for r in stub.state.requests), "the key was sent"
    assert proc.returncode == 0, proc.stderr
    failed = {line["query"]: line for line in read_lines(out) if line["status"] == "failed"}
    assert set(failed) == {"echo400", "echo500"} and "Bearer ***" in failed["echo400"]["detail"]
    # A 401 (bad key) stops the run with exit status 2 and a scrubbed message.
    with OpenAIStub(default=Action.echo_auth(401)) as stub:
        fatal = subprocess.run(
            [sys.executable, str(SCRIPT), *fast_flags(stub.base_url, inp, tmp_path / "o2.jsonl")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert fatal.returncode == 2 and "401" in fatal.stderr
    texts = [proc.stdout, proc.stderr, fatal.stdout, fatal.stderr]
    texts += [p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file()]
    assert not [t for t in texts if key in t]


def test_requests_really_overlap(tmp_path, key):
    queries = [f"q{i}" for i in range(16)]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    out = tmp_path / "out.jsonl"
    with OpenAIStub({q: [Action.ok(good("Paris"))] for q in queries}, latency=0.2) as stub:
        start = time.monotonic()
        assert distill_data.main(fast_flags(stub.base_url, inp, out, "--concurrency", "8", "--timeout", "5")) == 0
        wall = time.monotonic() - start
    assert 1 < stub.state.max_in_flight <= 8
    assert wall < 16 * 0.2 / 2, wall
    assert len(read_lines(out)) == 16


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_and_resume_real_cli(tmp_path, key):
    n = 80
    queries = [f"query {i}" for i in range(n)]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, DISTILL_TEST_KEY=key)
    with OpenAIStub({q: [Action.ok(good("Paris"))] for q in queries}, latency=0.04) as stub:
        cmd = [sys.executable, str(SCRIPT), *fast_flags(stub.base_url, inp, out, "--concurrency", "4")]
        for kill_after in (15, 45):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 15
            while _line_count(out) < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
            done = read_lines(out) if out.read_bytes().endswith(b"\n") else None
            assert done is None or len({d["key"] for d in done}) == len(done)
            assert kill_after <= _line_count(out) < n
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        assert final.returncode == 0, final.stderr
        served = len(stub.state.requests)
    lines = read_lines(out)
    assert sorted(line["query"] for line in lines) == sorted(queries)
    assert len({line["key"] for line in lines}) == n and all(line["status"] == "kept" for line in lines)
    summary = json.loads(final.stdout)
    assert summary["total"] == {
        "lines": n,
        "kept": n,
        "dropped": 0,
        "failed": 0,
        "dropped_by_reason": {},
        "failed_by_reason": {},
    }
    assert summary["already_done"] >= 45 and n <= served <= n + 2 * 4, "only in-flight samples are redone"


def test_torn_tail_is_truncated_and_redone(tmp_path, key):
    queries = [f"t{i}" for i in range(5)]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    out = tmp_path / "out.jsonl"
    with OpenAIStub({q: [Action.ok(good("Paris"))] for q in queries}) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
        data = out.read_bytes().splitlines(keepends=True)
        torn = data[-1][: len(data[-1]) // 2]
        out.write_bytes(b"".join(data[:-1]) + torn)
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert summary["torn_bytes_truncated"] == len(torn) and summary["this_run"]["attempted"] == 1
    lines = read_lines(out)
    assert sorted(line["query"] for line in lines) == queries


def test_retry_failed_and_lock(tmp_path, key):
    inp = write_records(tmp_path / "in.jsonl", [record("a", "Paris"), record("b", "Paris")])
    out = tmp_path / "out.jsonl"
    with OpenAIStub({"a": [Action.ok(good("Paris"))], "b": [Action.status(502)]}) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
    assert [line["status"] for line in read_lines(out)] == ["kept", "failed"]
    with OpenAIStub({"b": [Action.ok(good("Paris"))]}) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0  # plain resume: nothing to do
        assert stub.state.requests == []
        assert distill_data.main(fast_flags(stub.base_url, inp, out, "--retry-failed")) == 0
        assert [r.query for r in stub.state.requests] == ["b"]
        holder = ResumableJsonl(out)
        holder.open()
        try:  # a second writer on the same output is refused
            assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 2
        finally:
            holder.close()
    assert sorted((line["query"], line["status"]) for line in read_lines(out)) == [("a", "kept"), ("b", "kept")]


def test_sample_keys_and_selection(tmp_path):
    records = [
        record("same", "Paris"),
        record("same", "Paris"),
        record("u", "Paris", uid="row-7"),
        record("m", "Paris", source="toolace_multiple_turn"),
    ]
    inp = write_records(tmp_path / "in.jsonl", records)
    samples, skipped = distill_data.load_samples(str(inp), {"toolace_single_turn"}, None)
    keys = [s["key"] for s in samples]
    assert keys[1] == keys[0] + "#2" and keys[2] == "uid:row-7" and skipped == {"not_selected": 1}
    assert len(distill_data.load_samples(str(inp), None, 2)[0]) == 2
    assert distill_data.system_prompt("distill", samples[0]) == distillation_system_prompt(TOOLS)
    assert distill_data.system_prompt("train", samples[0]) == training_system_prompt(TOOLS, records[0]["raw_system"])


def test_teacher_helpers():
    assert (
        parse_chat_completion(json.dumps({"choices": [{"message": {"content": "c", "reasoning": "r"}}]}).encode())[
            "reasoning"
        ]
        == "r"
    )
    assert wrap_reasoning("<think>a</think>b", None) == "<think>a</think>b"
    assert wrap_reasoning("b", "  ") == "b"
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None
    assert scrub("key sk-1 and Authorization: Bearer abc.def", ("sk-1",)) == "key *** and Authorization: Bearer ***"


def test_help_documents_every_flag():
    parser = distill_data.build_parser()
    text = parser.format_help()
    for action in parser._actions:
        assert action.help, action.option_strings
        assert all(option in text for option in action.option_strings)


def test_lone_surrogate_reply_is_stored_escaped_and_never_redone(tmp_path, key):
    queries = ["s0", "s1", "s2"]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    out = tmp_path / "out.jsonl"
    lone = "<think>\ud800</think> " + f"<tool_call>{calls('Paris')}</tool_call>"
    plans = {"s0": [Action.ok(good("Paris"))], "s1": [Action.ok(lone)], "s2": [Action.ok(good("Paris"))]}
    with OpenAIStub(plans) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0  # resume: nothing left to do
        assert len(stub.state.requests) == 3
    lines = {line["query"]: line for line in read_lines(out)}
    assert set(lines) == set(queries)
    assert lines["s1"]["output"] == lone and lines["s1"]["status"] == "kept"
    assert b"\\ud800" in out.read_bytes()  # escaped: the file stays valid UTF-8
    out.read_bytes().decode("utf-8")


def test_key_echoed_by_a_successful_reply_is_scrubbed_from_every_field(tmp_path, key):
    echo = json.dumps(
        {
            "model": f"model-{key}",
            "choices": [
                {
                    "message": {"content": f"{good('Paris')} {key}", "reasoning_content": f"my key is {key}"},
                    "finish_reason": key,
                }
            ],
            "usage": {"note": key, key: 1},
        }
    )
    inp = write_records(tmp_path / "in.jsonl", [record("echo", "Paris")])
    out = tmp_path / "out.jsonl"
    with OpenAIStub({"echo": [Action.status(200, body=echo)]}) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
    (line,) = read_lines(out)
    assert key not in out.read_text() and "***" in line["content"] and "***" in line["reasoning_content"]
    assert line["teacher"]["response_model"] == "model-***" and line["usage"] == {"note": "***", "***": 1}


def test_key_on_the_command_line_is_neither_abbreviated_nor_echoed(tmp_path, key, capsys):
    inp = write_records(tmp_path / "in.jsonl", [record("q", "Paris")])
    base = ["--input", str(inp), "--output", str(tmp_path / "o.jsonl"), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        distill_data.main([*base, "--api-key", key])  # once an abbreviation of --api-key-env
    assert exit_info.value.code == 2
    assert distill_data.main([*base, "--api-key-env", key]) == 2  # the key itself where a name belongs
    err = capsys.readouterr().err
    assert key not in err and "unrecognized arguments: --api-key ***" in err and "looks like a key" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_server_error_message_is_kept_and_a_401_stops_the_run(tmp_path, key, capsys):
    queries = [f"q{i}" for i in range(40)]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    with OpenAIStub(default=Action.status(401, body='{"detail": "Invalid API key"}')) as stub:
        code = distill_data.main(fast_flags(stub.base_url, inp, tmp_path / "o.jsonl", "--concurrency", "4"))
        sent = len(stub.state.requests)
    assert code == 2 and "HTTP 401: Invalid API key" in capsys.readouterr().err
    assert sent <= 4, f"{sent} requests after a 401: the run must stop, not send every sample"


def test_server_down_stops_with_a_clear_message_and_resumes(tmp_path, key, capsys):
    import socket

    queries = [f"d{i}" for i in range(30)]
    inp = write_records(tmp_path / "in.jsonl", [record(q, "Paris") for q in queries])
    out = tmp_path / "out.jsonl"
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    flags = fast_flags(f"http://127.0.0.1:{port}/v1", inp, out, "--concurrency", "4", "--max-connection-failures", "6")
    assert distill_data.main(flags) == 3
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert "no answer from" in err and "run the same command again to resume" in err
    assert read_lines(out) == [], "unanswered samples are not written as failed"
    with OpenAIStub({q: [Action.ok(good("Paris"))] for q in queries}) as stub:
        assert distill_data.main(fast_flags(stub.base_url, inp, out)) == 0
    assert sorted(line["query"] for line in read_lines(out)) == sorted(queries)
