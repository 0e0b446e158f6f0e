"""BFCL v4 format sensitivity through ``run_bfcl.py``: BFCL's own prompt per entry, the requested return format read
with bfcl-eval's decoders (never ``eval``), its checker, and the max − min spread over the 26 configurations."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv, tiny_tokenizer_dir
from tool_n1.openai_stub import Action, OpenAIStub

pytestmark = pytest.mark.eval_env

SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.DOTALL)
USER = re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.DOTALL)


def test_ground_truth_in_every_requested_format_scores_100(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    ids = syn.write_format_sensitivity(tmp_path / "result", "tool-n1/fs-truth")
    assert len(ids) == 26 * 200 - 6  # simple_python_96 under the 6 json configurations: see FORMAT_EXCLUSIONS
    report = run_bfcl.run(evaluate_argv(root, "tool-n1/fs-truth", tmp_path, "format-sensitivity"))
    fs = report["format_sensitivity"]
    assert len(fs["configs"]) == 26 and set(fs["configs"].values()) == {100.0}
    assert fs["accuracy"] == 100.0 and fs["spread"] == 0.0 and fs["std"] == 0.0


def test_a_reply_in_the_wrong_format_scores_0_and_the_spread_shows_it(tmp_path):
    """Every reply written as a Python list: the Python configurations pass, the JSON / XML ones fail."""
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    key = "tool-n1/fs-python-only"
    ids = syn.write_format_sensitivity(tmp_path / "result", key, limit=26 * 8)
    path = next((tmp_path / "result").rglob("BFCL_v4_format_sensitivity_result.json"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    entries = {e["id"]: e for e in load_dataset_entry("format_sensitivity", include_language_specific_hint=False)}
    answers = {a["id"]: a for a in load_ground_truth_entry("format_sensitivity")}
    with path.open("w") as handle:
        for row in rows:
            original = row["id"].split(":")[-1]
            calls = syn.render_calls(answers[original], entries[row["id"]]["function"], original.rsplit("_", 1)[0])
            row["result"] = syn.render_bfcl_format(calls, "python", syn.format_config(row["id"])[1])
            handle.write(json.dumps(row) + "\n")
    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, "format_sensitivity"))
    configs = report["format_sensitivity"]["configs"]
    python = sum(":ret_fmt=python&" in i for i in ids)
    assert python == 8 * 8 and len(ids) > 26 * 7
    assert all(value == (100.0 if config.startswith("ret_fmt=python") else 0.0) for config, value in configs.items())
    assert report["format_sensitivity"]["spread"] == 100.0
    assert report["format_sensitivity"]["accuracy"] == pytest.approx(100 * python / len(ids))


def test_generate_sends_bfcl_prompt_per_configuration(tmp_path):
    """generate → stub that answers in the format the system prompt asks for → evaluate: 100 % in all 26
    configurations; the system message is exactly BFCL's for the entry's configuration (no Tool-N1 prompt)."""
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl
    from bfcl_eval.constants.default_prompts import OUTPUT_FORMAT_MAPPING
    from bfcl_eval.model_handler.utils import formulate_system_prompt
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    entries = load_dataset_entry("format_sensitivity", include_language_specific_hint=True)[:26]
    answers = {a["id"]: a for a in load_ground_truth_entry("format_sensitivity")}
    expected = {e["id"].split(":")[1]: formulate_system_prompt(e["id"].split(":")[1], e["function"]) for e in entries}
    original = entries[0]["id"].split(":")[-1]
    calls = syn.render_calls(answers[original], entries[0]["function"], original.rsplit("_", 1)[0])
    seen = []

    def responder(body):
        prompt = body.get("prompt", "")
        system = SYSTEM.findall(prompt)[0]
        seen.append(system)
        fmt = next(name for name, shown in OUTPUT_FORMAT_MAPPING.items() if shown in system)
        return Action.ok(syn.render_bfcl_format(calls, fmt, "<TOOLCALL>" in system))

    key = "tool-n1/fs-stub"
    with OpenAIStub(responder=responder) as stub:
        code = run_bfcl.main(
            ["generate", "--project-root", str(root), "--model", key, "--base-url", stub.base_url]
            + ["--local-model-path", str(tiny_tokenizer_dir(tmp_path / "tiny")), "--wait", "10", "--num-threads", "2"]
            + [
                "--result-dir",
                str(tmp_path / "result"),
                "--ids",
                ",".join(f"format_sensitivity_{n}" for n in range(26)),
            ]
        )
    assert code == 0 and sorted(seen) == sorted(expected.values())
    assert not any("<tool_call>" in system for system in seen)  # our training prompt is not sent
    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, "format_sensitivity"))
    assert set(report["format_sensitivity"]["configs"].values()) == {100.0}
    assert len(report["format_sensitivity"]["configs"]) == 26


def test_python_returns_are_never_evaluated(tmp_path):
    """bfcl-eval's Python decoder ``eval``s binary operations; ours refuses them first (control: bfcl's runs them)."""
    bfcl_root()
    import bfcl_formats
    from bfcl_eval.constants.enums import ReturnFormat
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting

    from tool_n1.bfcl_decode import DecodeError

    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    hostile = [
        f"[f(a={code} + 1)]",
        f"[f(a=(lambda: {code})())]",
        f"[f(a=[{code} for _ in 'x'])]",
        f"[f(a={code} if 1 else 2)]",
        f"<TOOLCALL>[f(a=1 + {code})]</TOOLCALL>",
        "[f(a=9**9**9**9)]",
        "[f(a=" + "(" * 500 + "1" + ")" * 500 + ")]",
        "[f(a='" + "x" * 2_000_000 + "')]",
    ]
    for reply in hostile:
        with pytest.raises(DecodeError):
            bfcl_formats.decode(reply, ReturnFormat.PYTHON, reply.startswith("<TOOLCALL>"))
    # a nested call is kept as text by bfcl's resolver (never called)
    assert bfcl_formats.decode(f"[f(a={code})]", ReturnFormat.PYTHON, False) == [{"f": {"a": code}}]
    assert not marker.exists()
    # control: bfcl-eval's own decoder evaluates a binary operation, side effects included
    assert default_decode_ast_prompting(f"[f(a={code} + 1)]", ReturnFormat.PYTHON, False) == [{"f": {"a": 2}}]
    assert marker.read_text() == "x"


def test_hostile_replies_in_every_format_are_wrong_fast(tmp_path):
    bfcl_root()
    import bfcl_formats
    from bfcl_eval.constants.enums import ReturnFormat

    from tool_n1.bfcl_decode import DecodeError

    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><functions><function name="f"><param name="p" type="string">&i;</param></function></functions>'
    )
    replies = [
        None,
        "",
        "x" * 1_000_000,
        "[" * 50_000 + "{" * 50_000,
        '[{"function": "f", "parameters": ' + "{" * 45_000 + "}" * 45_000 + "}]",
        "[f(a=1)" + ", f(a=1)" * 12_000 + "]",
        "<functions>" + "<function name='f'>" * 5_000 + "</functions>",
        bomb,
        '<functions><function><param type="integer">' + "9" * 50_000 + "</param></function></functions>",
        '[{"function": 1, "parameters": []}]',
        "\udcff\ud800 [f(a=1)]",
    ]
    for fmt in (ReturnFormat.PYTHON, ReturnFormat.JSON, ReturnFormat.VERBOSE_XML, ReturnFormat.CONCISE_XML):
        for tag in (False, True):
            for reply in replies:
                start = time.monotonic()
                try:
                    decoded = bfcl_formats.decode(reply, fmt, tag)
                except DecodeError:
                    decoded = None
                assert time.monotonic() - start < 2.0, (fmt, tag, str(reply)[:40])
                assert decoded in (None, []) or all(isinstance(next(iter(c)), str) for c in decoded)


def test_hostile_format_results_are_scored_wrong_without_crashing(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    ids = syn.write_format_sensitivity(tmp_path / "result", "tool-n1/fs-hostile", limit=52)
    hostile = [None, 7, ["[f(a=1)]"], "x" * 1_000_000, "[f(a=1 + 1)]", "<functions><function/></functions>"]
    hostile += ['[{"function": null, "parameters": {"a": 1}}]', "<TOOLCALL>[" + "(" * 300 + "</TOOLCALL>"]
    path = next((tmp_path / "result").rglob("BFCL_v4_format_sensitivity_result.json"))
    path.write_text(
        "".join(json.dumps({"id": i, "result": hostile[n % len(hostile)]}) + "\n" for n, i in enumerate(ids))
    )
    report = run_bfcl.run(evaluate_argv(root, "tool-n1/fs-hostile", tmp_path, "format_sensitivity"))
    assert report["format_sensitivity"]["accuracy"] == 0.0
