"""LLaMA-Factory/data_process.py: distilled JSONL -> Reason / No-Reason alpaca data (core only, no LLaMA-Factory)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tool_n1.prompts import NO_REASON_INSTRUCTION, distillation_system_prompt, training_system_prompt

LF_DIR = REPO / "LLaMA-Factory"


def load_data_process():
    spec = importlib.util.spec_from_file_location("lf_data_process", LF_DIR / "data_process.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dp = load_data_process()

# --------------------------------------------------------------------------- synthetic distillation journal
TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the weather of a city.",
        "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "convert_currency",
        "description": "Convert an amount between currencies.",
        "parameters": {
            "type": "dict",
            "properties": {"amount": {"type": "number"}, "src": {"type": "string"}, "dst": {"type": "string"}},
            "required": ["amount", "src", "dst"],
        },
    },
    {
        "name": "send_email",
        "description": "Send an email.",
        "parameters": {
            "type": "dict",
            "properties": {"receiver": {"type": "string"}, "content": {"type": "string"}},
            "required": ["receiver", "content"],
        },
    },
]
CITIES = ["Paris", "Lima", "Oslo", "Rome", "Cairo", "Tokyo", "Berlin", "Quito", "Dakar", "Hanoi", "Perth", "Accra"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"]
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin"]


def sample_calls(rng: random.Random) -> tuple[str, list[dict], str]:
    """(query, calls, thought) of a made-up single-turn request with one or two calls."""
    kind = rng.choice(["weather", "weather2", "currency", "email"])
    if kind == "weather":
        city = rng.choice(CITIES)
        return f"What is the weather in {city}?", [{"name": "get_weather", "arguments": {"city": city}}], "One city."
    if kind == "weather2":
        a, b = rng.sample(CITIES, 2)
        calls = [{"name": "get_weather", "arguments": {"city": c}} for c in (a, b)]
        return f"Weather in {a} and {b}, please.", calls, "Two cities, two calls."
    if kind == "currency":
        amount, (src, dst) = rng.choice([10, 25, 100, 250]), rng.sample(CURRENCIES, 2)
        calls = [{"name": "convert_currency", "arguments": {"amount": amount, "src": src, "dst": dst}}]
        return f"Convert {amount} {src} to {dst}.", calls, "A currency conversion."
    who = rng.choice(NAMES)
    calls = [{"name": "send_email", "arguments": {"receiver": who, "content": "See you at noon"}}]
    return f"Email {who}: See you at noon", calls, "One email."


def kept_line(key: str, query: str, calls: list[dict], thought: str, **extra) -> dict:
    """A `kept` line as data_process/distill_data.py writes it (fields this converter reads, plus a few others)."""
    output = f"<think>{thought}</think>\n<tool_call>{json.dumps(calls)}</tool_call>"
    return {
        "schema": 1,
        "key": key,
        "source_id": "toolace_single_turn",
        "status": "kept",
        "reason": None,
        "prompt": {"kind": "distill"},
        "system_prompt": distillation_system_prompt(TOOLS),
        "query": query,
        "answer": calls,
        "output": output,
    } | extra


def synthetic_lines(n: int, seed: int = 0, own_tools: bool = False) -> list[dict]:
    """``n`` kept lines; ``own_tools``: each prompt lists only the tools its calls use (shorter rows)."""
    rng = random.Random(seed)
    lines = [kept_line(f"uid:{i}", *sample_calls(rng)) for i in range(n)]
    if own_tools:
        for line in lines:
            used = [t for t in TOOLS if t["name"] in {c["name"] for c in line["answer"]}]
            line["system_prompt"] = distillation_system_prompt(used)
    return lines


def write_jsonl(path: Path, lines: list) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line if isinstance(line, str) else json.dumps(line))
            handle.write("\n")
    return path


def convert(tmp_path: Path, lines: list, *flags: str, out: str = "out") -> tuple[dict, Path]:
    src = write_jsonl(tmp_path / f"{out}.jsonl", lines)
    assert dp.main(["--input", str(src), "--output-dir", str(tmp_path / out), *flags]) == 0
    manifest = json.loads((tmp_path / out / dp.MANIFEST).read_text())
    return manifest, tmp_path / out


def read(folder: Path, name: str) -> list[dict]:
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- exact records
#: The distillation prompt of TOOLS from "You are an expert…" on, and its no-think counterpart (hand-checked
#: against the original lam_data_process.py / get_raw_sft_data.py run on the same line).
TOOLS_LINES = "\n".join(json.dumps({"type": "function", "function": t}) for t in TOOLS)
FAITHFUL_HEAD = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. \n"
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. \n"
    "If none of the function can be used, point it out. If the given question lacks the parameters required by the "
    "function,\nalso point it out. You should only return the function call in tools call sections.\n"
    " You are provided with function signatures within <tools></tools> XML tags. Here is a list of functions in JSON "
    "format that you can invoke:\n\n\n"
    f"    <tools>\n    {TOOLS_LINES}\n    </tools>\n\n    "
)
FAITHFUL_STEPS = (
    "In each action step, you MUST: \n"
    "    1. Think about the reasoning process in the mind and enclosed your reasoning within <think> </think> XML "
    "tags.\n    2. Then, provide a json object with function names and arguments within <tool_call></tool_call> "
    "XML tags. "
    'i.e., <tool_call>[{"name": <function-name>, "arguments": <args-json-object>}, {"name": <function-name2>, '
    '"arguments": <args-json-object2>}, ...]</tool_call>\n'
    "    3. Make sure both the reasoning and the tool call steps are included together in one single reply.\n"
    "    A complete reply example is: <think>To address the query, I need to send the email to Bob and then buy the "
    'banana through walmart. </think> <tool_call> [{"name": "email", "arguments": {"receiver": "Bob", "content": '
    '"I will bug banana through walmart"}}, {"name": "walmart", "arguments": {"input": "banana"}}]</tool_call>. '
    "Please make sure the type of the arguments is correct."
)
NO_REASON_STEPS = (
    "When you want to perform tool call, in each action step, providing a json object with function names and "
    'arguments within <tool_call></tool_call> XML tags. i.e., <tool_call>[{"name": <function-name>, "arguments": '
    '<args-json-object>}, {"name": <function-name2>, "arguments": <args-json-object2>}, ...]</tool_call>\n'
    'A complete reply example is: <tool_call> [{"name": "email", "arguments": {"receiver": "Bob", "content": '
    '"I will bug banana through walmart"}}, {"name": "walmart", "arguments": {"input": "banana"}}]</tool_call>. '
    "Please make sure the type of the arguments is correct."
)
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Lima"}},
    {"name": "get_weather", "arguments": {"city": "Oslo"}},
]
RAW_OUTPUT = (
    "<think>Two cities.\n</think>\n\n"
    '<tool_call>[{"name": "get_weather", "arguments": {"city": "Lima"}}, '
    '{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>\n'
    "Done. <tool_call>[]</tool_call><|eot_id|>"
)
EXPECTED_REASON = {
    "system_prompt": FAITHFUL_HEAD + FAITHFUL_STEPS,
    "query": "Weather in Lima and Oslo?",
    "output": '<think>Two cities.\n</think>\n\n<tool_call>[{"name": "get_weather", "arguments": {"city": "Lima"}}, '
    '{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>',
    "instruction": "",
}
EXPECTED_NO_REASON = {
    "system_prompt": FAITHFUL_HEAD + NO_REASON_STEPS,
    "query": "Weather in Lima and Oslo?",
    "output": '<tool_call>[{"name": "get_weather", "arguments": {"city": "Lima"}}, '
    '{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>',
    "instruction": "",
}


def test_no_reason_instruction_is_the_original_text():
    # sha256 of `new_instruction` in the original LLaMA-Factory/get_raw_sft_data.py (f9b4849), 578 chars
    text = NO_REASON_INSTRUCTION
    assert (len(text), hashlib.sha256(text.encode()).hexdigest()) == (
        578,
        "5f2fc6d60627fd70dba1393b427c24011303858b2a56b38b56a02d6f27dcba5a",
    )
    assert text == NO_REASON_STEPS


def test_exact_reason_and_no_reason_records(tmp_path):
    line = kept_line("uid:7", "Weather in Lima and Oslo?", CALLS, "x") | {"output": RAW_OUTPUT}
    assert line["system_prompt"] == "\n    " + FAITHFUL_HEAD + FAITHFUL_STEPS
    manifest, out = convert(tmp_path, [line], "--fractions", "1")
    assert read(out, "tool_sft_reason_100") == [EXPECTED_REASON]
    assert read(out, "tool_sft_noreason_100") == [EXPECTED_NO_REASON]
    # key order and formatting of the original's json.dump(..., ensure_ascii=False, indent=2)
    assert list(read(out, "tool_sft_reason_100")[0]) == ["system_prompt", "query", "output", "instruction"]
    assert manifest["target_checks"] == {"reason": {"ok": 1}, "noreason": {"ok": 1}}


def test_conversion_edge_cases():
    # faithful helpers keep the original's behaviour where it was well defined
    assert dp.truncate_after_first_tool_call("a<tool_call>[]</tool_call>b</tool_call>") == "a<tool_call>[]</tool_call>"
    assert dp.truncate_after_first_tool_call("no call") == "no call"
    assert dp.faithful_system_prompt("xx You are an expert in composing functions. Y") == (
        "You are an expert in composing functions. Y"
    )
    assert dp.faithful_system_prompt("custom prompt") == "custom prompt"
    # only newlines are stripped after </think> (the original's lstrip("\n")): a space survives
    assert dp.strip_reasoning("<think>t</think> <tool_call>[]</tool_call>") == " <tool_call>[]</tool_call>"
    assert dp.strip_reasoning("<think>t</think>\n\n<tool_call>[]</tool_call>") == "<tool_call>[]</tool_call>"
    assert dp.strip_reasoning("<tool_call>[]</tool_call>") == "<tool_call>[]</tool_call>"  # original: cut 7 chars
    assert dp.no_reason_system_prompt("no marker") == "no marker"


def test_every_line_is_converted_or_counted(tmp_path):
    good = synthetic_lines(6)
    lines = [
        *good,
        "",
        "{not json",
        "[1, 2]",
        {"key": "uid:d", "status": "dropped", "reason": "names_mismatch"},
        {"key": "uid:f", "status": "failed", "reason": "timeout"},
        {"key": "uid:s", "status": "weird"},
        kept_line("uid:m", "q", CALLS, "t") | {"output": None},
        good[0] | {"query": "a second line for the same key"},
        # a target that no longer matches once cut at the first </tool_call>
        kept_line("uid:x", "Weather in Lima and Oslo?", CALLS, "t")
        | {"output": "<think>t</think><tool_call>[]</tool_call><tool_call>" + json.dumps(CALLS) + "</tool_call>"},
    ]
    manifest, out = convert(tmp_path, lines)
    assert manifest["lines_read"] == len(lines) == 15
    assert manifest["samples_converted"] == 7
    assert manifest["excluded_by_reason"] == {
        "blank_line": 1,
        "not_json": 1,
        "not_an_object": 1,
        "status_dropped": 1,
        "status_failed": 1,
        "status_unknown": 1,
        "missing_output": 1,
        "duplicate_key": 1,
    }
    assert manifest["target_checks"]["reason"] == {"ok": 6, "target_call_mismatch": 1}
    assert manifest["target_checks"]["noreason"] == {"ok": 6, "target_call_mismatch": 1}
    assert len(read(out, "tool_sft_reason_100")) == 7
    # --drop-mismatched drops it from both variants and counts it
    manifest, out = convert(tmp_path, lines, "--drop-mismatched", out="strict")
    assert manifest["samples_converted"] == 6 and manifest["excluded_by_reason"]["mismatched_target"] == 1
    assert len(read(out, "tool_sft_noreason_100")) == 6


def _hostile_lines() -> dict[str, bytes]:
    """One journal line per crash class found by feeding generated hostile lines to the converter."""
    base = kept_line("uid:h", "Weather in Lima?", CALLS, "t")
    return {
        "invalid_utf8": json.dumps(base | {"key": "uid:u", "query": "Lima?"}).encode().replace(b"Lima?", b"Lim\xff?"),
        "not_json": b'{"key": "uid:n", "status": "kept", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "lone_surrogate": json.dumps(base | {"key": "uid:s", "output": "<think>\ud800</think>"}).encode(),
        "prompt_not_object": json.dumps(base | {"key": "uid:p", "prompt": [1]}).encode(),
    }


@pytest.mark.parametrize("prompt", ["distill", "train"])
def test_hostile_journal_lines_are_counted_never_crash(tmp_path, prompt):
    good = synthetic_lines(3)
    hostile = _hostile_lines()
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"".join(json.dumps(line).encode() + b"\n" for line in good) + b"\n".join(hostile.values()) + b"\n"
    )
    flags = ["--prompt", "train"] if prompt == "train" else []
    assert dp.main(["--input", str(src), "--output-dir", str(tmp_path / "out"), *flags]) == 0
    manifest = json.loads((tmp_path / "out" / dp.MANIFEST).read_text())
    excluded = manifest["excluded_by_reason"]
    assert excluded["invalid_utf8"] == 1 and excluded["not_json"] == 1 and excluded["lone_surrogate"] == 1
    assert manifest["lines_read"] == 7 == manifest["samples_converted"] + manifest["lines_excluded"]
    if prompt == "distill":
        assert manifest["samples_converted"] == 4  # the prompt field is not read here
    else:  # without --records, a line distilled with another prompt is counted under that reason
        assert excluded["train_prompt_needs_records"] == 4


def test_output_files_are_written_as_a_set(tmp_path, monkeypatch):
    first, _ = convert(tmp_path, synthetic_lines(8), out="set")
    before = {p.name: p.read_bytes() for p in (tmp_path / "set").iterdir()}
    calls = []
    real_write = dp.FileSet.write_json

    def failing_write(self, path, value, indent=2):
        calls.append(path.name)
        if len(calls) == 3:  # after the 50 % files, before the 100 % ones
            raise OSError("disk full")
        real_write(self, path, value, indent)

    monkeypatch.setattr(dp.FileSet, "write_json", failing_write)
    src = write_jsonl(tmp_path / "second.jsonl", synthetic_lines(12, seed=5))
    with pytest.raises(OSError, match="disk full"):
        dp.main(["--input", str(src), "--output-dir", str(tmp_path / "set")])
    after = {p.name: p.read_bytes() for p in (tmp_path / "set").iterdir()}
    assert after == before, "a failed run leaves the previous set whole and no temporary files"
    assert first["samples_converted"] == 8


def test_subsets_are_seeded_nested_shared_and_order_independent(tmp_path):
    lines = synthetic_lines(41)
    m1, out1 = convert(tmp_path, lines, "--seed", "3", out="a")
    shuffled = lines[:]
    random.Random(9).shuffle(shuffled)  # the journal order of a concurrent distillation run varies
    m2, out2 = convert(tmp_path, shuffled, "--seed", "3", out="b")
    m3, _ = convert(tmp_path, lines, "--seed", "4", out="c")
    subsets = m1["subsets"]
    assert m1["subsets"] == m2["subsets"]
    for name in ("tool_sft_reason_50", "tool_sft_noreason_100"):
        assert (out1 / f"{name}.json").read_bytes() == (out2 / f"{name}.json").read_bytes()
    assert subsets["tool_sft_reason_50"]["rows"] == 21  # round(20.5) half up
    half, full = subsets["tool_sft_reason_50"]["keys"], subsets["tool_sft_reason_100"]["keys"]
    assert full[:21] == half and sorted(full) == sorted(x["key"] for x in lines)
    assert subsets["tool_sft_noreason_50"]["keys"] == half
    assert sorted(half + subsets["rl_rest_50"]["keys"]) == sorted(full)
    assert m3["subsets"]["tool_sft_reason_50"]["keys"] != half
    # file rows follow the manifest's key order
    by_key = {x["key"]: x for x in lines}
    assert [r["query"] for r in read(out1, "tool_sft_reason_50")] == [by_key[k]["query"] for k in half]
    # fixed expectation: the first keys of seed 3 do not change between releases
    assert half[:4] == ["uid:26", "uid:20", "uid:13", "uid:8"]


def test_train_prompt_option(tmp_path):
    """--prompt train: the RL system message, rebuilt from the unified records (tools + ToolACE preamble)."""
    preamble = "You are a tool expert. Here is a list of functions in JSON format that you can invoke:\n"
    records, lines = [], []
    for i, (query, calls, thought) in enumerate(sample_calls(random.Random(i)) for i in range(3)):
        records.append(
            {
                "id": "toolace_single_turn",
                "uid": i,
                "raw_system": preamble,
                "tools": TOOLS,
                "conversations": [{"from": "human", "value": query}],
                "answer": calls,
            }
        )
        lines.append(kept_line(f"uid:{i}", query, calls, thought))
    lines.append(kept_line("uid:99", "unknown", CALLS, "t"))
    rec = write_jsonl(tmp_path / "unified.jsonl", records)
    manifest, out = convert(tmp_path, lines, "--prompt", "train", "--records", str(rec), "--fractions", "1")
    assert manifest["excluded_by_reason"] == {"key_not_in_records": 1}
    rows = read(out, "tool_sft_reason_100")
    assert {r["system_prompt"] for r in rows} == {training_system_prompt(TOOLS, preamble)}
    no_reason = read(out, "tool_sft_noreason_100")[0]["system_prompt"]
    assert no_reason == training_system_prompt(TOOLS, preamble).split("In each action step")[0] + NO_REASON_STEPS
    manifest, out = convert(
        tmp_path, lines[:1], "--prompt", "train", "--records", str(rec), "--dedupe-tool-intro", out="dd"
    )
    assert read(out, "tool_sft_reason_100")[0]["system_prompt"] == training_system_prompt(TOOLS, preamble, dedupe=True)
    # without records only lines distilled with the training prompt can be used
    train_line = kept_line("uid:5", "q", CALLS, "t") | {
        "prompt": {"kind": "train"},
        "system_prompt": training_system_prompt(TOOLS),
    }
    manifest, out = convert(tmp_path, [lines[0], train_line], "--prompt", "train", "--fractions", "1", out="nr")
    assert manifest["excluded_by_reason"] == {"train_prompt_needs_records": 1}
    assert read(out, "tool_sft_reason_100")[0]["system_prompt"] == training_system_prompt(TOOLS)


def test_dataset_info_is_committed_and_matches(tmp_path):
    committed = json.loads((LF_DIR / "data" / "dataset_info.json").read_text())
    assert committed == dp.dataset_info_entries([0.5, 1.0])
    # the default run leaves an existing dataset_info.json byte-identical; a new fraction is merged in
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dataset_info.json").write_bytes((LF_DIR / "data" / "dataset_info.json").read_bytes())
    convert(tmp_path, synthetic_lines(4))
    assert (tmp_path / "out" / "dataset_info.json").read_bytes() == (
        LF_DIR / "data" / "dataset_info.json"
    ).read_bytes()
    convert(tmp_path, synthetic_lines(4), "--fractions", "0.25")
    assert "tool_sft_noreason_25" in json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    # every dataset a shipped config names is registered
    for config in (LF_DIR / "examples").rglob("*.yaml"):
        for line in config.read_text().splitlines():
            if line.startswith("dataset:"):
                assert line.split(":", 1)[1].strip() in committed, config


def test_cli_help_and_errors(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    script = str(LF_DIR / "data_process.py")
    run = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, env=env, check=True)
    for flag in ("--input", "--output-dir", "--seed", "--fractions", "--prompt", "--records", "--tokenizer"):
        assert flag in run.stdout
    missing = [sys.executable, script, "--input", str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path)]
    bad = subprocess.run(missing, capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "cannot read --input" in bad.stderr


@pytest.mark.parametrize("flags", [["--fractions", "0"], ["--drop-overlong"], ["--records", "x.jsonl"]])
def test_bad_flag_combinations(tmp_path, flags):
    src = write_jsonl(tmp_path / "in.jsonl", synthetic_lines(2))
    assert dp.main(["--input", str(src), "--output-dir", str(tmp_path / "o"), *flags]) == 2
