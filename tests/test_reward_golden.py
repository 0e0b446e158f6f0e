"""The original reward's scores on the 44 edge cases of its table, for every variant, plus the LLaMA rows.

Each row of ``golden/reward_table.json`` holds the exact response and ground truth; the scorer sees
``prefix + response + end``, i.e. the prompt+response string the original received. ``"crash"`` marks where the
original raised: ours scores 0 and says why. ``improved`` names the flag that changes the row and its new score.
"""

import json
from pathlib import Path

import pytest

from tool_n1.reward import RESULT_KEYS, compute_score

TABLE = json.loads((Path(__file__).parent / "golden" / "reward_table.json").read_text())
CASES = TABLE["cases"]


def test_table_is_complete():
    assert len(CASES) == 44 and len({c["id"] for c in CASES}) == 44
    assert TABLE["variants"] == ["binary", "lexico", "binary_no_think", "partial_think", "partial_think_name"]


@pytest.mark.parametrize("variant", TABLE["variants"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_faithful_scores(case, variant):
    solution = TABLE["prefixes"]["qwen"] + case["response"] + case["end"]
    result = compute_score("toolcall", solution, case["ground_truth"], variant=variant)
    expected = case["faithful"][variant]
    if expected == "crash":
        assert result["score"] == 0.0 and "raised" in result["parse_error"]
    else:
        assert result["score"] == expected
    assert {k: type(v) for k, v in result.items()} == RESULT_KEYS


# The fake-turn row depends on the prompt+response cut at the last marker, so it is not response-only.
RESPONSE_ONLY = [c for c in CASES if c["id"] != "fake_turn"]


@pytest.mark.parametrize("case", RESPONSE_ONLY, ids=[c["id"] for c in RESPONSE_ONLY])
def test_response_only_input_scores_like_prompt_plus_response(case):
    """Current verl passes the response alone; the score is the same as on prompt + response."""
    expected = case["faithful"]["binary"]
    result = compute_score("toolcall", case["response"], case["ground_truth"])
    assert result["score"] == (0.0 if expected == "crash" else expected)


IMPROVED = [(c, flag, score) for c in CASES for flag, score in c.get("improved", {}).items()]


@pytest.mark.parametrize("case,flag,score", IMPROVED, ids=[f"{c['id']}-{f}" for c, f, _ in IMPROVED])
def test_each_improved_flag_changes_its_row(case, flag, score):
    solution = TABLE["prefixes"]["qwen"] + case["response"] + case["end"]
    faithful = compute_score("toolcall", solution, case["ground_truth"])["score"]
    assert faithful == case["faithful"]["binary"] != score
    assert compute_score("toolcall", solution, case["ground_truth"], **{flag: True})["score"] == score
    assert compute_score("toolcall", solution, case["ground_truth"], mode="improved")["score"] == score
    without_flag = compute_score("toolcall", solution, case["ground_truth"], mode="improved", **{flag: False})
    assert without_flag["score"] == faithful


def test_every_improved_flag_is_covered_by_a_row():
    from dataclasses import fields

    from tool_n1.reward import RewardOptions

    assert {f.name for f in fields(RewardOptions)} == {flag for _, flag, _ in IMPROVED}


@pytest.mark.parametrize("case", TABLE["llama_cases"], ids=[c["id"] for c in TABLE["llama_cases"]])
def test_llama_scores(case):
    solution = TABLE["prefixes"]["llama"] + case["response"] + TABLE["prefixes"]["llama_end"]
    result = compute_score("toolcall", solution, case["ground_truth"], variant="llama")
    if case["expected"] == "crash":
        assert result["score"] == 0.0 and "raised" in result["parse_error"]
    else:
        assert result["score"] == case["expected"]
