"""One parse function, one stated block policy per reader: the training reward and every evaluator read a response
through ``tool_n1.parsing.select_calls``; this pins which ``<tool_call>`` block(s) each one reads by default.

| reader | default | why |
|---|---|---|
| reward, ``faithful`` | last | the original reward |
| reward, ``native_blocks`` / ``improved`` | all outside ``<think>`` | Qwen's native one-call-per-block output |
| held-out (``eval/heldout.py``) | the reward's | it scores with the reward: consistent with training |
| API-Bank, ACEBench | first | the original evaluation code (its BFCL handler) read the first block |
| BFCL ``--prompt bfcl`` / ``train`` | first / last | paper-faithful / consistent with training (eval_env test) |
"""

from __future__ import annotations

import json

import acebench
import apibank
import heldout
import pytest

from tests.conftest import require_shared_fixtures
from tool_n1.parsing import parse_response, select_calls
from tool_n1.reward import compute_score


def _block(calls) -> str:
    return f"<tool_call>{json.dumps(calls)}</tool_call>"


A = [{"name": "a", "arguments": {}}]
B = [{"name": "b", "arguments": {}}]
C = [{"name": "c", "arguments": {}}]
#: a call inside the reasoning, then two answer blocks
TEXT = f"<think>maybe {_block(A)}</think>{_block(B)}{_block(C)}"


def test_select_calls_policies():
    assert select_calls(TEXT, "first")[0] == A
    assert select_calls(TEXT, "last")[0] == C
    assert select_calls(TEXT, "all")[0] == B + C  # the block inside <think> is skipped
    assert parse_response(TEXT, block="all").calls == B + C
    with pytest.raises(ValueError, match="block policy"):
        select_calls(TEXT, "middle")


def test_reward_policy():
    assert compute_score("t", TEXT, json.dumps(C))["score"] == 1.0  # faithful: last block
    assert compute_score("t", TEXT, json.dumps(B))["score"] == 0.0
    assert compute_score("t", TEXT, json.dumps(B + C), native_blocks=True)["score"] == 1.0
    assert compute_score("t", TEXT, json.dumps(A + B + C), native_blocks=True)["score"] == 0.0


def test_apibank_reads_the_first_block_by_default():
    data = require_shared_fixtures("apibank", "damo_convai") / "level-1-api.json"
    sample = apibank.load(data)[0]
    right, wrong = [sample.answer], [{"name": "Nope", "arguments": {}}]
    reply = f"<think>t</think>{_block(right)}{_block(wrong)}"
    assert apibank.score([sample], {sample.id: reply})["structural_all"]["correct"] == 1
    assert apibank.score([sample], {sample.id: reply}, block="last")["structural_all"]["correct"] == 0


def test_acebench_reads_the_first_block_by_default():
    data = require_shared_fixtures("acebench", "data_en")
    row = acebench.load(data, ["normal_atom_list"])[0]
    echo = acebench.echo_outputs([row])[row.id]
    reply = echo + _block([{"name": "nope", "arguments": {}}])
    assert acebench.score([row], {row.id: reply})["per_category"][row.category]["correct"] == 1
    assert acebench.score([row], {row.id: reply}, block="last")["per_category"][row.category]["correct"] == 0


def test_benchmark_command_lines_default_to_the_first_block():
    """API-Bank and ACEBench take their flags from ``add_benchmark_flags``; its ``--block`` default is "first"."""
    import argparse

    import openai_generate

    parser = argparse.ArgumentParser(allow_abbrev=False)
    openai_generate.add_benchmark_flags(parser, limit_help="")
    assert parser.parse_args(["--output", "o"]).block == "first"


def test_heldout_uses_the_reward_and_refuses_unreadable_ground_truths():
    rows = [{"prompt": [], "reward_model": {"ground_truth": json.dumps(C)}, "extra_info": {"index": 0}}]
    report = heldout.score_outputs(rows, {"row-0": TEXT})
    assert report["all"]["calls_match"] == 1.0  # the reward's last-block reading
    assert heldout.check_ground_truths(rows) == 0
    foreign = [{"prompt": [], "reward_model": {"ground_truth": "<tool_call>x</tool_call>"}}] * 2
    with pytest.raises(SystemExit, match="none of the 2 ground truths"):
        heldout.check_ground_truths(foreign)
    assert heldout.check_ground_truths(rows + foreign) == 2
