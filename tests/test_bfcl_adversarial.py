"""Adversarial replies never crash decoding or ``evaluate`` and never execute: decode_execute's call strings go
through BFCL's real multi-turn executor (``eval``) and a sentinel file must not appear."""

from __future__ import annotations

import json

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv

pytestmark = pytest.mark.eval_env


def _tc(payload: str) -> str:
    return f"<think>t</think><tool_call>{payload}</tool_call>"


def adversarial(sentinel: str) -> list[str]:
    touch = f"__import__('os').system('touch {sentinel}')"
    calls = [
        {"name": touch, "arguments": {}},
        {"name": "os.system", "arguments": {"command": f"touch {sentinel}"}},
        {"name": "open", "arguments": {"file": sentinel, "mode": "w"}},
        {"name": "importlib.import_module", "arguments": {"name": "antigravity"}},
        {"name": "eval", "arguments": {"source": touch}},
        {"name": "f); __import__('os').system('touch x'); (", "arguments": {}},
        {"name": "add", "arguments": {f"a=1, b={touch}, c": 1}},
        {"name": "add", "arguments": {"**__import__('os').environ": 1}},
        {"name": "add", "arguments": {"a": touch, "b": f"'); {touch}; ('"}},
        {"name": "mean", "arguments": {"numbers": [float("nan")]}},
        {"name": "x.__class__.__base__", "arguments": {}},
        {"name": "copy.copy", "arguments": {"x": 1}},
    ]
    return [
        "",
        "garbage",
        "<tool_call>",
        "<tool_call></tool_call>",
        _tc("42"),
        _tc('"text"'),
        _tc("null"),
        _tc("[1, 2]"),
        _tc('{"name": "add", "arguments": {"a": 1, "b": 2}}'),  # bare dict (accepted, as training)
        _tc('[{"name": 5, "arguments": {}}]'),
        _tc('[{"name": "add", "arguments": "a=1"}]'),
        _tc('[{"name": "add", "arguments": [1]}]'),
        _tc("[" * 5000 + "]" * 5000),
        _tc('[{"name": "add", "arguments": {"a": ' + "9" * 5000 + "}}]"),
        _tc('[{"name": "add", "arguments": {"a": NaN}}]'),
        *[_tc(json.dumps([call])) for call in calls],
        _tc(json.dumps(calls)),
    ]


def test_decoders_never_raise_anything_but_decode_error(tmp_path):
    bfcl_root()
    from tool_n1 import bfcl_decode

    for reply in adversarial(str(tmp_path / "sentinel")):
        for decode in (bfcl_decode.decode_ast, bfcl_decode.decode_execute):
            for block in ("first", "last"):
                try:
                    decode(reply, block) if decode is bfcl_decode.decode_ast else decode(reply, block, {"add"})
                except bfcl_decode.DecodeError:
                    pass
        with pytest.raises(bfcl_decode.DecodeError):
            bfcl_decode.decode_ast({"not": "text"})


def test_execute_strings_are_safe_in_bfcl_executor(tmp_path, monkeypatch):
    bfcl_root()
    import bfcl_executor_guard
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import execute_multi_turn_func_call

    from tool_n1 import bfcl_decode

    allowed = bfcl_executor_guard.allowed_methods(["MathAPI"])

    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "sentinel"
    executed = []
    for reply in adversarial(str(sentinel)):
        try:
            strings = bfcl_decode.decode_execute(reply, "first", allowed)
        except bfcl_decode.DecodeError:
            continue
        executed += strings
        execute_multi_turn_func_call(strings, {}, ["MathAPI"], "tool-n1_adversarial", "multi_turn_base_0")
    assert not sentinel.exists() and not (tmp_path / "x").exists()
    assert "add(a=\"__import__('os').system" in "".join(executed)  # a value is data, written with repr
    add = _tc('[{"name": "add", "arguments": {"a": 1, "b": 2}}]')
    assert bfcl_decode.decode_execute(add, "first", allowed) == ["add(a=1, b=2)"]
    legit, _ = execute_multi_turn_func_call(["add(a=1, b=2)"], {}, ["MathAPI"], "tool-n1_adv", "multi_turn_base_1")
    assert "3" in legit[0]


def test_evaluate_survives_adversarial_results(tmp_path):
    root = bfcl_root()
    import run_bfcl
    from bfcl_eval.utils import load_dataset_entry

    replies = adversarial(str(tmp_path / "sentinel"))
    categories = ["simple_python", "simple_java", "simple_javascript", "parallel", "live_simple", "irrelevance"]
    key = "tool-n1/adversarial"
    for category in categories:
        folder = tmp_path / "result" / key.replace("/", "_") / ("live" if category.startswith("live") else "non_live")
        folder.mkdir(parents=True, exist_ok=True)
        entries = load_dataset_entry(category, include_prereq=False, include_language_specific_hint=False)
        lines = [json.dumps({"id": e["id"], "result": r}) for e, r in zip(entries, replies, strict=False)]
        (folder / f"BFCL_v4_{category}_result.json").write_text("\n".join(lines) + "\n")
    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, ",".join(categories)))
    assert set(report["categories"]) == set(categories)
    assert report["categories"]["simple_python"]["accuracy"] == 0.0
    assert not (tmp_path / "sentinel").exists()
