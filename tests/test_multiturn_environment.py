"""The BFCL multi-turn environment against bfcl-eval's own executor and checker, on real BFCL entries."""

from __future__ import annotations

import json
import os
import random

import pytest

pytestmark = pytest.mark.rl_env
pytest.importorskip("bfcl_eval", reason="bfcl-eval's multi-turn classes (installed --no-deps in the RL env)")

from tool_n1_multiturn.environment import BfclEnvironment, function_docs, openai_tool_schema  # noqa: E402


@pytest.fixture(scope="module")
def base_entries(tmp_path_factory):
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(tmp_path_factory.mktemp("bfcl")))
    import bfcl_multiturn_split as split_mod

    data = split_mod.bfcl_data_dir()
    entries = split_mod.read_jsonl(data / "BFCL_v4_multi_turn_base.json")
    answers = {
        a["id"]: a["ground_truth"]
        for a in split_mod.read_jsonl(data / "possible_answer" / "BFCL_v4_multi_turn_base.json")
    }
    return [(e, answers[e["id"]]) for e in random.Random(0).sample(entries, 12)]


def test_ground_truth_runs_the_same_as_in_bfcl_evals_own_executor(base_entries):
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import state_checker
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import execute_multi_turn_func_call

    for entry, answer in base_entries:
        ours = BfclEnvironment(entry["initial_config"], entry["involved_classes"])
        for turn_index, turn in enumerate(answer):
            our_results = [ours.execute_string(call) for call in turn]
            theirs, instances = execute_multi_turn_func_call(
                turn, entry["initial_config"], entry["involved_classes"], "tool_n1_test", entry["id"]
            )
            assert our_results == theirs, (entry["id"], turn_index)
            assert state_checker(ours.instances, instances)["valid"], (entry["id"], turn_index)
        assert len(ours.executed) == sum(len(t) for t in answer)


def test_state_checker_sees_a_wrong_call(base_entries):
    entry, answer = next((e, a) for e, a in base_entries if "GorillaFileSystem" in e["involved_classes"])
    ours = BfclEnvironment(entry["initial_config"], entry["involved_classes"])
    truth = BfclEnvironment(entry["initial_config"], entry["involved_classes"])
    assert ours.state_matches(truth)
    ours.execute("mkdir", {"dir_name": "not_in_the_ground_truth"})
    assert not ours.state_matches(truth)
    assert "not_in_the_ground_truth" in json.dumps(ours.snapshot())


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("__import__", {"name": "os"}),
        ("eval", {"source": "1"}),
        ("ls.__globals__", {}),
        ("_load_scenario", {"scenario": {}}),
        ("send_message", {"receiver_id": "x", "message": "m"}),  # another class's function
        ("ls", {"a": float("nan")}),
        ("ls", {"__class__": 1}),
        ("ls", {"a": [[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}),
        ("ls", "not an object"),
        ("cat", {"file_name": "x" * 200_000}),
    ],
)
def test_unsafe_calls_are_refused_before_anything_runs(base_entries, name, arguments):
    entry, _ = next((e, a) for e, a in base_entries if "GorillaFileSystem" in e["involved_classes"])
    env = BfclEnvironment(entry["initial_config"], entry["involved_classes"])
    before = env.snapshot()
    result = env.execute(name, arguments)
    assert result.startswith("Error during execution: refused: ")
    assert env.executed == [] and env.snapshot() == before


def test_function_documents_become_valid_verl_tool_schemas():
    from verl.tools.schemas import OpenAIFunctionToolSchema

    from tool_n1_multiturn.environment import MULTI_TURN_CLASSES

    count = 0
    for class_name in MULTI_TURN_CLASSES:
        for doc in function_docs(class_name):
            schema = OpenAIFunctionToolSchema.model_validate(openai_tool_schema(doc))
            assert schema.function.parameters.type == "object"
            count += 1
    assert count >= 128


def test_every_base_entry_converts_and_the_split_is_written(tmp_path):
    import bfcl_multiturn_split as split_mod

    assert split_mod.main(["--output-dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "split.json").read_text())
    assert summary["rows"] == {"train": 100, "test": 100} and summary["skipped"] == {}
    assert set(summary["train_ids"]).isdisjoint(summary["heldout_ids"])
    assert (tmp_path / "heldout_ids.txt").read_text().strip().split(",") == summary["heldout_ids"]
    assert split_mod.main(["--output-dir", str(tmp_path)]) == 2  # a second writer is refused
    short = tmp_path / "short"
    assert split_mod.main(["--output-dir", str(short), "--tool-list", "ground_truth", "--limit", "3"]) == 0
    summary = json.loads((short / "split.json").read_text())
    assert summary["rows"] == {"train": 3, "test": 3} and len(summary["heldout_ids"]) == 3
