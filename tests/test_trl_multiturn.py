"""The TRL backend's multi-turn mode (``verl/train_trl.py +ablation=multiturn``): BFCL environments through TRL's
``environment_factory``, executed calls, the multi-turn reward.

Runs in the RL environment (``.venv/rl``: trl 1.16, bfcl-eval's classes). The GRPO test fits a tiny Qwen2 (the
multi-turn smoke's opening policy: ``add_to_watchlist`` for ZETA, right, or AAPL, wrong and state-changing) on the
train-half entries that open with that call, then runs 2 GRPO steps of ``train_trl.py`` on their first user turns
with 4 rollouts each; a spy around the multi-turn reward sees every rollout's record. Asserted: calls were executed
and changed an environment's state, both branches occurred, and the gradient norm is non-zero at both steps. About
a minute on the 2-core CPU machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_multiturn_cpu_smoke import FIRST_TURN, RIGHT, fit_opening_policy, narrow_split

pytestmark = pytest.mark.rl_env

FIT_STEPS = 600


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    """The seeded multi_turn_base split (ground-truth functions only in the prompts)."""
    out = tmp_path_factory.mktemp("mt_split")
    env = {**os.environ, "BFCL_PROJECT_ROOT": str(out / "bfcl"), "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, str(REPO / "data_process" / "bfcl_multiturn_split.py"), "--output-dir", str(out / "s")]
    run = subprocess.run(
        [*command, "--tool-list", "ground_truth"], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out / "s"


@pytest.fixture(scope="module")
def te():
    from tool_n1_multiturn import trl_environment

    return trl_environment


def train_rows(split_dir):
    import pyarrow.parquet as pq

    return pq.read_table(str(split_dir / "train.parquet")).to_pylist()


def test_every_bfcl_function_is_a_typed_documented_tool(te):
    from transformers.utils import get_json_schema

    from tool_n1_multiturn.environment import MULTI_TURN_CLASSES, class_methods, function_docs

    count = 0
    for class_name in MULTI_TURN_CLASSES:
        for doc in function_docs(class_name):
            if doc["name"] not in class_methods(class_name):
                continue
            schema = get_json_schema(te.tool_method(doc["name"], doc))["function"]
            assert schema["name"] == doc["name"]
            assert set(schema["parameters"].get("required", [])) == set(doc["parameters"].get("required", []))
            assert set(schema["parameters"]["properties"]) == set(doc["parameters"]["properties"])
            count += 1
    assert count == 128


def test_chat_template_is_the_evaluation_prompt_and_trl_accepts_it(te, split_dir, tmp_path):
    from tiny_model import build_tiny_tokenizer
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    from tool_n1.prompts import chatml

    tokenizer = te.use_tool_n1_format(build_tiny_tokenizer())
    assert supports_tool_calling(tokenizer) and is_chat_template_prefix_preserving(tokenizer)
    rows, skipped = te.turn_rows(train_rows(split_dir))
    assert not skipped and len(rows) > 100
    later = next(r for r in rows if r["extra_info"][te.TURN_KEY] == 2)
    assert [m["role"] for m in later["prompt"]].count("user") == 3
    assert "tool" in [m["role"] for m in later["prompt"]]  # bfcl-eval's real results of the earlier turns
    text = tokenizer.apply_chat_template(later["prompt"], tokenize=False, add_generation_prompt=True)
    assert text == chatml(later["prompt"])  # what eval/bfcl_handler.py sends for the same conversation
    ids = tokenizer(RIGHT + "<|im_end|>", add_special_tokens=False)["input_ids"]  # TRL passes the reply's ids
    parsed = tokenizer.parse_response(ids)
    assert parsed["content"] == RIGHT and parsed["tool_calls"][0]["function"] == FIRST_TURN[0]
    assert "tool_calls" not in tokenizer.parse_response("<tool_call>[{" * 10_000)  # no call, no exception
    # a saved tokenizer keeps the format as a transformers response schema, which reads the same call
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(str(tmp_path / "tok"))
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert reloaded.parse_response(RIGHT)["tool_calls"] == parsed["tool_calls"]


def test_environment_replays_earlier_turns_and_scores_the_turn(te, split_dir):
    rows, _ = te.turn_rows(train_rows(split_dir))
    row = next(r for r in rows if r["extra_info"][te.TURN_KEY] == 1)
    factories = te.environment_factories(rows)
    env = factories[row["environment"]]()
    assert env.reset(**row) is None
    spec = json.loads(row["extra_info"]["bfcl"])
    assert len(env._env.executed) == len(spec["ground_truth"][0])  # the first turn's ground truth replayed
    truth = json.loads(row["reward_model"]["ground_truth"])[1]
    texts = []
    for call in truth:  # the ground truth through the environment's tool methods (as TRL calls them)
        result = getattr(env, call["name"])(**call["arguments"])
        assert not result.startswith("Error during execution: refused")
        texts.append("<think>a</think><tool_call>" + json.dumps([call]) + "</tool_call>")
    texts.append("<think>b</think>Done.")
    reward = te.MultiTurnReward({"reward": "turn_and_state"})
    completions = [[{"role": "assistant", "content": t} for t in texts], [{"role": "assistant", "content": "no"}]]
    other = factories[row["environment"]]()
    other.reset(**row)
    cols = {"reward_model": [row["reward_model"]] * 2, "extra_info": [row["extra_info"]] * 2}
    assert reward(None, completions, environments=[env, other], **cols) == [1.0, 0.0]
    # hostile calls: refused by the decoder's checks, never executed
    assert getattr(env, truth[0]["name"])(**{"__class__": 1}).startswith("Error during execution: refused")
    broken = factories[row["environment"]]()
    broken.reset(extra_info={"bfcl": "{not json"})
    assert getattr(broken, truth[0]["name"])().startswith("Error during execution: bad BFCL spec")
    assert reward(None, completions[:1], environments=[broken], **{k: v[:1] for k, v in cols.items()}) == [0.0]


def load_train_trl():
    name = "tool_n1_train_trl_multiturn_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "verl" / "train_trl.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_two_grpo_steps_execute_tools_and_move_the_weights(split_dir, tmp_path, monkeypatch):
    from tool_n1.multiturn_reward import compute_score

    monkeypatch.setenv("BFCL_PROJECT_ROOT", str(tmp_path / "bfcl"))
    data_dir = tmp_path / "data"
    assert narrow_split(split_dir, data_dir) == {"train.parquet": 4, "test.parquet": 2}
    assert fit_opening_policy(data_dir, tmp_path / "model", steps=FIT_STEPS, lr=3e-3, hidden=64) < 0.5
    records = []

    def spy(*args, **kwargs):
        if "bfcl_trajectory" in args[3]:  # not the configuration probe
            records.append(json.loads(args[3]["bfcl_trajectory"]))
        return compute_score(*args, **kwargs)

    argv = [
        "--model", str(tmp_path / "model"), "--train-file", str(data_dir / "train.parquet"),
        "--output-dir", str(tmp_path / "run"), "--device", "cpu", "--max-steps", "2", "--turns", "first",
        "+ablation=multiturn", "data.train_batch_size=2", "actor_rollout_ref.rollout.n=4",
        "data.max_prompt_length=2048", "data.max_response_length=192",
        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=3", "actor_rollout_ref.actor.optim.lr=1e-4",
        "trainer.save_freq=-1", "trainer.test_freq=-1",
    ]  # fmt: skip
    summary = load_train_trl().train(argv, score_fn=spy)
    assert summary["steps"] == 2 and summary["multi_turn"]["turns"] == "first"
    assert len(records) == 2 * 2 * 4  # 2 steps x 2 prompts x 4 rollouts, each scored from its environment
    executed = [r for r in records if r["calls_executed"] > 0]
    assert executed, records[:2]
    assert any(r["state_changed"] for r in records)  # the AAPL branch changed a watchlist
    calls = {c for r in executed for t in r["turns"] for c in t["calls"]}
    assert any("ZETA" in c for c in calls) and any("AAPL" in c for c in calls), calls
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["grad_norm"] > 0.0 for m in metrics), metrics


def test_reward_never_raises_on_hostile_rollouts(te, split_dir):
    rows, _ = te.turn_rows(train_rows(split_dir), "first")
    row = rows[0]
    env = te.environment_factories(rows)[row["environment"]]()
    env.reset(**row)
    huge = "<think>" + "x" * 1_000_000 + "</think><tool_call>[" + "[" * 5000 + "]</tool_call>"
    completions = [
        [{"role": "assistant", "content": huge}],
        [{"role": "assistant", "content": "\ud800<think>\udfff</think>"}, "not a message", None],
        "plain text",
        [{"role": "assistant", "content": ["not", "text"]}],
    ]
    cols = {
        "reward_model": [row["reward_model"], {"ground_truth": "[" * 10_000}, None, {"ground_truth": "{}"}],
        "extra_info": [row["extra_info"], {"bfcl_turn": "x"}, None, {"bfcl_turn": 10**30}],
    }
    scores = te.MultiTurnReward({"reward": "turn"})(None, completions, [env, None, env, 7], **cols)
    assert scores == [0.0, 0.0, 0.0, 0.0]
    name = json.loads(row["reward_model"]["ground_truth"])[0][0]["name"]
    assert getattr(env, name)(file_name="Z" * 100_000).startswith("Error during execution: refused")
