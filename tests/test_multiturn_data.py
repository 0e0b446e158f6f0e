"""Multi-turn data: the seeded BFCL split and the ToolACE per-turn converter (data_process/)."""

from __future__ import annotations

import json

import bfcl_multiturn_split as split_mod
import pytest
import toolace_multiturn as toolace

from tests.conftest import require_shared_fixtures
from tool_n1.reward import compute_score

IDS = [f"multi_turn_base_{i}" for i in range(200)]


def test_seeded_split_is_disjoint_complete_and_reproducible():
    train, heldout = split_mod.seeded_split(IDS, seed=0, train_fraction=0.5)
    assert len(train) == len(heldout) == 100
    assert set(train).isdisjoint(heldout) and set(train) | set(heldout) == set(IDS)
    assert split_mod.seeded_split(list(reversed(IDS)), 0, 0.5) == (train, heldout)  # input order does not matter
    assert split_mod.seeded_split(IDS, 1, 0.5)[0] != train


def hub_dialog():
    tools = [{"name": "get_price", "parameters": {"type": "dict", "properties": {"sym": {"type": "string"}}}}]
    return {
        "system": "You are an expert. " + toolace.LIST_INTRO + "\n" + json.dumps(tools) + "\nThanks.",
        "conversations": [
            {"from": "user", "value": "Price of NVDA?"},
            {"from": "assistant", "value": "[get_price(sym='NVDA')]"},
            {"from": "tool", "value": '{"price": 120}'},
            {"from": "assistant", "value": "NVDA is at 120."},
            {"from": "user", "value": "And AMD?"},
            {"from": "assistant", "value": '[get_price(sym="AMD")]'},
        ],
    }


def test_toolace_dialog_becomes_one_chat_sample_per_call_turn():
    samples, skipped = toolace.dialog_samples(hub_dialog(), 7)
    assert not skipped and [s["extra_info"]["id"] for s in samples] == ["7:1", "7:5"]
    second = samples[1]
    roles = [m["role"] for m in second["prompt"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert '"get_price"' in second["prompt"][0]["content"]  # the dialog's tools in the Tool-N1 system prompt
    assert second["prompt"][2]["content"].startswith("<think></think> <tool_call>[")
    assert json.loads(second["reward_model"]["ground_truth"]) == [{"name": "get_price", "arguments": {"sym": "AMD"}}]
    # the single-turn reward scores the turn: the ground truth as a reply earns 1
    reply = "<think>AMD now</think><tool_call>" + second["reward_model"]["ground_truth"] + "</tool_call>"
    assert compute_score(second["data_source"], reply, second["reward_model"]["ground_truth"])["score"] == 1.0


HOSTILE = [
    None,
    [1, 2],
    {"system": "x", "conversations": "not json"},
    {"system": "x", "conversations": [{"from": "alien", "value": "hi"}]},
    {"system": "x", "conversations": [{"from": "user", "value": "only one turn"}]},
    {"system": "no tools here", "conversations": [{"from": "user", "value": "a"}, {"from": "user", "value": "b"}]},
    {**hub_dialog(), "tools": "[" * 100_000},
    {**hub_dialog(), "conversations": [{"from": "user", "value": "\ud800"}, {"from": "user", "value": "b"}]},
]


@pytest.mark.parametrize("row", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_rows_are_counted_not_raised(row):
    try:
        samples, skipped = toolace.dialog_samples(row, 0)
    except toolace.Rejected as exc:
        assert exc.code
    else:
        assert samples == []


def test_hostile_turns_are_counted():
    dialog = hub_dialog()
    dialog["conversations"][5]["value"] = "[get_price(sym=" + "[" * 5000 + ")]"
    dialog["conversations"].append({"from": "user", "value": "and?"})
    dialog["conversations"].append({"from": "assistant", "value": "[get_price(sym=" + "9" * 5000 + ")]"})
    dialog["conversations"].append({"from": "assistant", "value": "[unknown_fn(a=1)]"})
    samples, skipped = toolace.dialog_samples(dialog, 0)
    assert len(samples) == 1  # the NVDA turn; the call-string parser refuses deep nesting and a 5000-digit int
    assert skipped == {"call_unparsable": 2, "unknown_tool_in_answer": 1}


def test_converter_cli_on_real_toolace_rows(tmp_path):
    source = require_shared_fixtures("toolace", "sharegpt_func_fixed_rows_0-49.json")
    out = tmp_path / "turns.jsonl"
    assert toolace.main(["--input", str(source), "--output", str(out)]) == 0
    report = json.loads((tmp_path / "turns.jsonl.report.json").read_text())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert report["rows"] == 50 and report["samples"] == len(rows) > 0
    # every input dialog is converted or counted, every call turn emitted or counted
    assert sum(report["dialogs"].values()) == 50
    assert all(r["data_source"] == "toolace_multi_turn" and r["prompt"][0]["role"] == "system" for r in rows)
    assert toolace.main(["--input", str(source), "--output", str(out)]) == 2  # no silent overwrite


def test_scenario_split_puts_every_variant_of_a_scenario_in_one_half():
    base = split_mod.seeded_split(IDS, seed=0, train_fraction=0.5)
    assert split_mod.scenario_split(IDS, 0, 0.5) == base  # the default (base only) split is unchanged
    number = lambda ids: {i.rsplit("_", 1)[1] for i in ids}  # noqa: E731
    for category in ("miss_func", "miss_param", "long_context"):
        ids = [f"multi_turn_{category}_{i}" for i in range(200)]
        train, heldout = split_mod.scenario_split(ids, 0, 0.5)
        assert number(train) == number(base[0]) and number(heldout) == number(base[1])
    # a category with fewer scenarios still follows the scenarios' halves
    some = [f"multi_turn_miss_func_{i}" for i in range(0, 200, 3)]
    train, heldout = split_mod.scenario_split(some, 0, 0.5, scenarios=IDS)
    assert number(train) <= number(base[0]) and number(heldout) <= number(base[1])


@pytest.mark.rl_env
def test_miss_func_entries_list_held_out_functions_only_from_their_turn(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setenv("BFCL_PROJECT_ROOT", str(tmp_path / "bfcl"))
    out = tmp_path / "split"
    categories = ["multi_turn_base", "multi_turn_miss_func", "multi_turn_long_context", "multi_turn_miss_param"]
    assert split_mod.main(["--output-dir", str(out), "--categories", *categories]) == 0
    summary = json.loads((out / "split.json").read_text())
    assert summary["categories"] == categories and summary["skipped"] == {}
    assert summary["rows"] == {"train": 400, "test": 400}
    held = {i.rsplit("_", 1)[1] for i in summary["heldout_ids"]}
    assert held.isdisjoint(i.rsplit("_", 1)[1] for i in summary["train_ids"])
    rows = pq.read_table(str(out / "train.parquet")).to_pylist() + pq.read_table(str(out / "test.parquet")).to_pylist()
    row = next(r for r in rows if r["extra_info"]["id"] == "multi_turn_miss_func_0")  # 'sort' held out until turn 3
    spec = json.loads(row["extra_info"]["bfcl"])
    assert '"name": "sort"' not in row["prompt"][0]["content"] and '"name": "mv"' in row["prompt"][0]["content"]
    assert "'name': 'sort'" in spec["next_turns"][2][0]["content"]  # turn 3 = next_turns[2]
    assert json.loads(row["reward_model"]["ground_truth"])[2] == []  # the turn before: no call possible
    long_row = next(r for r in rows if r["extra_info"]["id"].startswith("multi_turn_long_context_"))
    assert json.loads(long_row["extra_info"]["bfcl"])["long_context"] is True


@pytest.mark.eval_env
@pytest.mark.parametrize("data_mode", ["improved", "faithful"])
@pytest.mark.parametrize("category", ["multi_turn_base", "multi_turn_miss_func"])
def test_split_prompts_are_what_the_evaluation_sends(category, data_mode, tmp_path, monkeypatch):
    """Every entry's system prompt (and miss_func's hold-out turn) equals what ``eval/run_bfcl.py --prompt train``
    builds through bfcl-eval's own function population, so training and evaluation show the same text."""
    monkeypatch.setenv("BFCL_PROJECT_ROOT", str(tmp_path / "bfcl"))
    import bfcl_handler
    from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING as PROMPT
    from bfcl_eval.utils import populate_test_cases_with_predefined_functions

    data = split_mod.bfcl_data_dir()
    entries = split_mod.read_jsonl(data / f"BFCL_v4_{category}.json")
    answers = {
        a["id"]: a["ground_truth"] for a in split_mod.read_jsonl(data / "possible_answer" / f"BFCL_v4_{category}.json")
    }
    populated = populate_test_cases_with_predefined_functions(json.loads(json.dumps(entries)))
    options = bfcl_handler.HandlerOptions(data_mode=data_mode)
    for entry, bfcl_entry in zip(entries, populated, strict=True):
        row = split_mod.entry_row(entry, answers[entry["id"]], category, "test", 0, data_mode=data_mode)
        assert row["prompt"][0]["content"] == bfcl_handler.system_message(options, bfcl_entry["function"]), entry["id"]
        spec = json.loads(row["extra_info"]["bfcl"])
        for turn, docs in bfcl_entry.get("missed_function", {}).items():
            assert spec["next_turns"][int(turn) - 1][0]["content"] == PROMPT.format(functions=docs)
