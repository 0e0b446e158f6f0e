"""Multi-turn rewards (tool_n1.multiturn_reward) on hand-written trajectory records; standard library only."""

from __future__ import annotations

import json

import pytest

from tool_n1.multiturn_reward import RESULT_KEYS, compute_score

LS = {"name": "ls", "arguments": {}}
CD = {"name": "cd", "arguments": {"folder": "docs"}}
MKDIR = {"name": "mkdir", "arguments": {"dir_name": "temp"}}
TRUTH = json.dumps([[LS], [CD, MKDIR]])


def reply(*calls, think="plan"):
    return f"<think>{think}</think><tool_call>{json.dumps(list(calls))}</tool_call>"


DONE = "<think>done</think>All set."


def score(turns, reward="turn", truth=TRUTH, **kwargs):
    record = {"turns": turns, "calls_executed": 3, "state_changed": True, "error": ""}
    return compute_score(
        "bfcl_multi_turn", "", truth, {"bfcl_trajectory": json.dumps(record)}, reward=reward, **kwargs
    )


def test_perfect_trajectory_scores_one_under_every_reward():
    turns = [{"texts": [reply(LS), DONE], "state_ok": True}, {"texts": [reply(CD, MKDIR), DONE], "state_ok": True}]
    for reward in ("turn", "state", "turn_and_state"):
        result = score(turns, reward)
        assert result["score"] == 1.0, reward
        assert result["turns_correct"] == 2.0 and result["calls_executed"] == 3.0


def test_calls_of_a_turn_may_be_spread_over_replies_in_any_order():
    turns = [
        {"texts": [reply(LS), DONE], "state_ok": True},
        {"texts": [reply(MKDIR), reply(CD), DONE], "state_ok": True},
    ]
    assert score(turns)["turn_reward"] == 1.0


def test_one_wrong_turn_halves_the_turn_reward_and_the_state_reward_is_all_or_nothing():
    wrong = {"name": "mkdir", "arguments": {"dir_name": "tmp"}}
    turns = [{"texts": [reply(LS), DONE], "state_ok": True}, {"texts": [reply(CD, wrong), DONE], "state_ok": False}]
    assert score(turns, "turn")["score"] == 0.5
    assert score(turns, "state")["score"] == 0.0
    assert score(turns, "turn_and_state")["score"] == 0.25
    assert score(turns, "turn_and_state", turn_weight=1.0)["score"] == 0.5


def test_a_different_call_sequence_reaching_the_same_state_earns_only_the_state_reward():
    # an extra read-only ls in turn 2: the calls differ from the ground truth, the environment ends the same
    turns = [
        {"texts": [reply(LS), DONE], "state_ok": True},
        {"texts": [reply(CD), reply(MKDIR, LS), DONE], "state_ok": True},
    ]
    assert score(turns, "turn")["score"] == 0.5
    assert score(turns, "state")["score"] == 1.0
    assert score(turns, "turn_and_state")["score"] == 0.75


def test_format_is_checked_on_every_reply_of_a_turn():
    no_think = f"<tool_call>{json.dumps([LS])}</tool_call>"
    turns = [{"texts": [no_think, DONE], "state_ok": True}, {"texts": [reply(CD, MKDIR), "Done."], "state_ok": True}]
    result = score(turns)
    assert result["turn_reward"] == 0.0 and result["format_ok"] == 0.0
    assert score(turns, "state")["score"] == 1.0  # the state reward ignores the format


def test_turns_never_reached_score_zero_and_block_the_state_reward():
    turns = [{"texts": [reply(LS), DONE], "state_ok": True}]
    result = score(turns, "turn_and_state")
    assert result["turn_reward"] == 0.5 and result["state_reward"] == 0.0 and result["turns_total"] == 2.0


def test_numbers_by_value_only_in_improved_mode():
    truth = json.dumps([[{"name": "add", "arguments": {"a": 1}}]])
    turns = [{"texts": [reply({"name": "add", "arguments": {"a": 1.0}}), DONE], "state_ok": True}]
    assert score(turns, truth=truth)["score"] == 0.0
    assert score(turns, truth=truth, mode="improved")["score"] == 1.0


def test_an_answer_without_a_call_matches_an_empty_ground_truth_turn():
    truth = json.dumps([[LS], []])
    turns = [
        {"texts": [reply(LS), DONE], "state_ok": True},
        {"texts": ["<think>need a name</think>Which file?"], "state_ok": True},
    ]
    assert score(turns, truth=truth)["score"] == 1.0


HOSTILE_RECORDS = [
    None,
    "",
    "not json",
    "[1, 2]",
    json.dumps({"turns": "x"}),
    json.dumps({"turns": [None, 3, {"texts": "abc"}, {"texts": [None, 5]}]}),
    json.dumps({"turns": [{"texts": ["<tool_call>" + "[" * 100_000 + "</tool_call>"]}]}),
    json.dumps(
        {
            "turns": [
                {
                    "texts": [
                        '<think>x</think><tool_call>[{"name": "ls", "arguments": {"a": '
                        + "9" * 5000
                        + "}}]</tool_call>"
                    ]
                }
            ]
        }
    ),
    json.dumps({"turns": [{"texts": ["<think>" + "x" * 1_000_000 + "</think>"]}], "calls_executed": True}),
    json.dumps({"turns": [{"texts": ["\ud800<think>\udfff</think>"]}], "error": {"a": 1}}),
    "[" * 100_000,
    b"\xff\xfe".decode("utf-8", "surrogateescape"),
]


@pytest.mark.parametrize("raw", HOSTILE_RECORDS, ids=range(len(HOSTILE_RECORDS)))
@pytest.mark.parametrize("truth", [TRUTH, "", "[[", json.dumps([1, 2]), json.dumps("[[]]"), None, [[LS]]])
def test_hostile_records_and_truths_never_raise(raw, truth):
    for reward in ("turn", "state", "turn_and_state"):
        result = compute_score("bfcl_multi_turn", "", truth, {"bfcl_trajectory": raw}, reward=reward)
        assert set(result) == set(RESULT_KEYS)
        assert all(isinstance(result[k], t) for k, t in RESULT_KEYS.items())
        assert 0.0 <= result["score"] <= 1.0


def test_missing_extra_info_scores_zero_with_a_reason():
    result = compute_score("bfcl_multi_turn", "", TRUTH, None)
    assert result["score"] == 0.0 and "no bfcl_trajectory" in result["parse_error"]


def test_configuration_errors_raise():
    with pytest.raises(ValueError, match="unknown multi-turn reward"):
        compute_score("bfcl_multi_turn", "", TRUTH, {}, reward="outcome")
    with pytest.raises(ValueError, match="turn_weight"):
        compute_score("bfcl_multi_turn", "", TRUTH, {}, reward="turn_and_state", turn_weight=2)
    with pytest.raises(ValueError, match="unknown reward mode"):
        compute_score("bfcl_multi_turn", "", TRUTH, {}, mode="lenient")
