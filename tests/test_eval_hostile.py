"""Hostile predictions never crash or stall the API-Bank / ACEBench scorers: each bad reply is one counted,
wrong item with a reason; 1 MB replies are scored in linear time; a torn last line does not stop a resume; a run
that cannot reach its server fails without a score; level-2 API-Bank data is labelled as such."""

from __future__ import annotations

import json
import random
import time

import acebench
import apibank
import openai_generate
import pytest
import replies

from tests.conftest import require_shared_fixtures
from tool_n1.openai_stub import Action, OpenAIStub
from tool_n1.prompts import format_response

MB = 1_000_000


@pytest.fixture(scope="module")
def ab_samples():
    data = require_shared_fixtures("apibank", "damo_convai") / "level-1-api.json"
    samples = apibank.load(data)
    return [next(s for s in samples if s.api == "QueryStock"), *samples[:5]]  # the first one runs the official rules


@pytest.fixture(scope="module")
def ace_rows():
    return acebench.load(require_shared_fixtures("acebench", "data_en"), ["normal_atom_list"])[:6]


def _tc(calls) -> str:
    return f"<think>t</think><tool_call>{calls if isinstance(calls, str) else json.dumps(calls)}</tool_call>"


def hostile_replies(name: str, key: str) -> list:
    """Replies for an item whose answer calls ``name`` with parameter ``key``."""
    return [
        None,
        42,
        {"text": "x"},
        ["a"],
        "",
        "no call at all",
        _tc([{"name": name, "arguments": {key: 10**400}}]),  # a 400-digit integer
        _tc('[{"name": "' + name + '", "arguments": {"' + key + '": -' + "9" * 399 + ".5e300}}]"),  # inf float
        _tc("[" * 600 + "]" * 600),
        _tc([{"name": name, "arguments": {key: json.loads("[" * 600 + "]" * 600)}}]),  # 600 deep in the checker
        _tc([{"name": name, "arguments": {key: "a" * MB}}]),  # 1 MB of word characters (the quadratic regex case)
        _tc([{"name": name, "arguments": {key: "[x(" * (MB // 3)}}]),
        _tc([{"name": name, "arguments": {"k" * 1000 + str(i): "=" for i in range(MB // 1010)}}]),
        _tc([{"name": name, "arguments": {key: "'x" * (MB // 2)}}]),
        "<tool_call>" * (MB // 11),
        "<tool_call>[" + "{" * (MB - 20),
        _tc("\ud800 invalid surrogate"),
        _tc([{"name": name, "arguments": {key: "\ud800"}}]),
    ]


def test_apibank_scores_every_hostile_reply_as_wrong(ab_samples):
    sample = ab_samples[0]
    key = next(iter(sample.answer["arguments"]))
    corpus = hostile_replies(sample.answer["name"], key)
    start = time.perf_counter()
    for reply in corpus:
        report = apibank.score([sample], {sample.id: reply})
        item = report["items"][0]
        assert item["structural"] is False and item["reason"], reply if isinstance(reply, str) else reply
        assert sum(report["reply_status"].values()) == 1
        assert report["items"][0]["official_rules"] is False
    # generous hard bound: the quadratic regexes took 83 s on one 40 KB reply; here 18 replies up to 1 MB each
    assert time.perf_counter() - start < 60
    assert apibank.score([sample], {sample.id: None})["reply_status"]["not_text"] == 1
    assert apibank.score([sample], {})["reply_status"] == {**dict.fromkeys(replies.STATUSES, 0), "missing": 1}


def test_acebench_scores_every_hostile_reply_as_wrong(ace_rows):
    row = ace_rows[0]
    answer = row.answer[0] if isinstance(row.answer, list) else row.answer
    name, arguments = next(iter(answer.items()))
    corpus = hostile_replies(name, next(iter(arguments)))
    start = time.perf_counter()
    for reply in corpus:
        report = acebench.score([row], {row.id: reply})
        assert report["per_category"][row.category]["correct"] == 0
        assert report["failed"][row.id]
    assert time.perf_counter() - start < 60
    deep = acebench.score(
        [row], {row.id: _tc([{"name": name, "arguments": {"a": json.loads("[" * 600 + "]" * 600)}}])}
    )
    assert deep["reply_status"]["too_deep"] == 1


def test_apibank_param_reader_is_the_official_regex_in_linear_time():
    random.seed(7)
    alphabet = "ab_1 ='\"[]()\n,"
    for _ in range(20_000):
        text = "".join(random.choice(alphabet) for _ in range(random.randint(0, 12)))
        match = apibank.CALL_REGEX.search(text)
        assert apibank.find_call(text) == (match.groups() if match else None)
        expected = [
            (m[1] or m[3] or m[5], m[2] if m[1] else m[4] if m[3] else m[6])
            for m in apibank.PARAM_REGEX.finditer(text)
        ]
        assert apibank.find_params(text) == expected
    assert apibank.find_params("a" * MB) == []  # each character inspected a bounded number of times


def test_large_integer_matches_exactly():
    assert apibank.value_matches(10**400, str(10**400)) and not apibank.value_matches(10**400, str(10**400 + 1))
    assert not apibank.value_matches(10**400, "1.5")


def test_torn_last_line_is_ignored_and_resume_appends_cleanly(ab_samples, tmp_path):
    raw = tmp_path / "raw.jsonl"
    first, second = ab_samples[0], ab_samples[1]
    raw.write_text(json.dumps({"id": first.id, "output": "x"}) + "\n" + '{"id": "' + second.id + '", "outp')
    counts = {}
    assert openai_generate.read_outputs(raw, counts=counts) == {first.id: "x"} and counts["torn_last_line"] == 1
    reply = format_response([second.answer], think="t")
    plans = {apibank.messages_for(second)[1]["content"]: [Action.ok(reply)]}
    with OpenAIStub(plans) as stub:
        config = openai_generate.GenerationConfig(base_url=stub.base_url, model="m", retries=0, timeout=10)
        outputs = openai_generate.generate([(second.id, apibank.messages_for(second))], config, raw, progress=False)
    assert outputs == {second.id: reply}
    assert openai_generate.read_outputs(raw) == {first.id: "x", second.id: reply}
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "output": "a"}\nnot json\n{"id": 2}\n')
    counts = {}
    assert openai_generate.read_outputs(tmp_path / "bad.jsonl", counts=counts) == {"1": "a"}
    assert counts["unreadable_lines"] == 2


@pytest.mark.parametrize("bench", ["apibank", "acebench"])
def test_unreachable_server_fails_without_a_score(bench, tmp_path, capsys):
    dead = "http://127.0.0.1:9/v1"  # discard port: connection refused
    common = [
        "--base-url",
        dead,
        "--model",
        "m",
        "--output",
        str(tmp_path),
        "--limit",
        "2",
        "--retries",
        "0",
        "--timeout",
        "2",
    ]
    if bench == "apibank":
        data = require_shared_fixtures("apibank", "damo_convai") / "level-1-api.json"
        code = apibank.main(["--data", str(data), *common])
    else:
        data = require_shared_fixtures("acebench", "data_en")
        code = acebench.main(["--data", str(data), "--categories", "normal_atom_bool", *common])
    assert code == 1
    assert "have no output" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_level_two_data_is_labelled(tmp_path, capsys):
    row = {
        "query": [{"role": "user", "content": "find a tool"}],
        "answers": [{"name": "ToolSearcher", "arguments": {"keywords": "weather"}}],
        "tools": [
            {
                "name": "ToolSearcher",
                "description": "search",
                "parameters": {"keywords": {"type": "str", "description": "k"}},
            }
        ],
    }
    data = tmp_path / "apibank_l2.json"
    data.write_text(json.dumps([row]))
    assert apibank.main(["--data", str(data), "--echo", "--output", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["level"] == 2 and "level-2" in report["benchmark"] and report["paper_figure3"] is None
    assert "level-2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        apibank.main(["--data", str(data), "--echo", "--level", "1", "--output", str(tmp_path / "o")])
