"""Our reward through verl 0.9.1's own reward loop on a hand-built batch (real DataProto, tiny offline tokenizer).

Path: compose our config -> migrate_legacy_reward_impl -> load_reward_manager (imports pkg://tool_n1.reward and binds
reward_kwargs) -> NaiveRewardManager.run_single per sample -> assemble_rm_scores, as verl's reward workers do.
"""

import asyncio
import importlib.util
import json

import pytest
from tiny_model import build_tiny_tokenizer, toy_rows

from tests.conftest import REPO
from tool_n1.prompts import format_response
from tool_n1.reward import compute_score

pytestmark = pytest.mark.rl_env

GOLD = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
RESPONSES = [
    format_response(GOLD, think="Paris weather."),  # right
    format_response([{"name": "get_weather", "arguments": {"city": "Rome"}}], think="x"),  # wrong argument
    "<tool_call>" + json.dumps(GOLD) + "</tool_call>",  # right call, no reasoning
    "<think>hmm</think> I cannot help.",  # no call
    format_response([{"name": "get_time", "arguments": {}}], think="time"),  # wrong function
    "<think>a</think> <tool_call>[{bad json</tool_call>",  # unparsable
]
EXTRA_KEYS = {"score", "format_ok", "call_parsed", "names_match", "calls_match", "parse_error"}


def _compose(*overrides):
    spec = importlib.util.spec_from_file_location("tool_n1_validate_config", REPO / "verl" / "validate_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compose(["tool_n1.data_dir=/unused", *overrides])


def _batch(tokenizer, responses, prompt_len=48, response_len=64):
    """A DataProto as the agent loop hands it to the reward: left-padded prompts, right-padded responses + EOS."""
    import numpy as np
    import torch

    from verl import DataProto

    rows = toy_rows(len(responses))
    for row in rows:  # every row asks for the Paris call
        row["reward_model"]["ground_truth"] = json.dumps(GOLD)
    pad = tokenizer.pad_token_id
    prompts, resps, masks = [], [], []
    for row, text in zip(rows, responses, strict=True):
        p_ids = tokenizer.apply_chat_template(row["prompt"][1:], add_generation_prompt=True, tokenize=False)
        p_ids = tokenizer(p_ids)["input_ids"][-prompt_len:]
        r_ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        assert len(r_ids) <= response_len
        prompts.append([pad] * (prompt_len - len(p_ids)) + p_ids)
        resps.append(r_ids + [pad] * (response_len - len(r_ids)))
        masks.append(
            [0] * (prompt_len - len(p_ids)) + [1] * len(p_ids) + [1] * len(r_ids) + [0] * (response_len - len(r_ids))
        )
    prompts_t, resps_t = torch.tensor(prompts), torch.tensor(resps)
    tensors = {
        "prompts": prompts_t,
        "responses": resps_t,
        "input_ids": torch.cat([prompts_t, resps_t], dim=1),
        "attention_mask": torch.tensor(masks),
    }
    non_tensors = {key: np.array([row[key] for row in rows], dtype=object) for key in ("data_source", "reward_model")}
    non_tensors["extra_info"] = np.array([dict(row["extra_info"]) for row in rows], dtype=object)
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)


def _score_with_verl(cfg, tokenizer, data):
    from omegaconf import open_dict
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl
    from verl.trainer.ppo.reward import load_reward_manager

    with open_dict(cfg):
        migrate_legacy_reward_impl(cfg)
    manager = load_reward_manager(cfg, tokenizer)

    async def run():
        return await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))

    outputs = manager.loop.run_until_complete(run())  # the loop the manager bound at construction, as verl runs it
    rm_scores = manager.assemble_rm_scores(data, [out["reward_score"] for out in outputs])
    return type(manager).__name__, outputs, rm_scores


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.mark.parametrize(
    ("ablation", "variant"), [(None, None), ("partial_think", "partial_think"), ("binary_no_think", "binary_no_think")]
)
def test_verl_reward_manager_scores_equal_compute_score(tokenizer, ablation, variant):
    cfg = _compose(*([f"+ablation={ablation}"] if ablation else []))
    data = _batch(tokenizer, RESPONSES)
    name, outputs, rm_scores = _score_with_verl(cfg, tokenizer, data)
    assert name == "NaiveRewardManager"
    for i, out in enumerate(outputs):
        # what verl hands the reward: the response only, decoded with skip_special_tokens (no <|im_end|>)
        decoded = tokenizer.decode(data.batch["responses"][i], skip_special_tokens=True)
        assert decoded == RESPONSES[i]
        expected = compute_score(
            "toolcall", decoded, json.dumps(GOLD), {"prompt_type": "qwen"}, mode="faithful", variant=variant
        )
        assert out["reward_score"] == expected["score"], (i, RESPONSES[i], out)
        assert set(out["reward_extra_info"]) == EXTRA_KEYS  # same keys for every sample (verl indexes by the first)
        assert out["reward_extra_info"] == expected
    # the score sits on the last valid response token (the EOS)
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[1] :].sum(dim=1)
    for i, out in enumerate(outputs):
        assert rm_scores[i, lengths[i] - 1].item() == pytest.approx(out["reward_score"])
        assert rm_scores[i].sum().item() == pytest.approx(out["reward_score"])
    scores = [out["reward_score"] for out in outputs]
    if variant is None:  # the paper's binary reward
        assert scores == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    elif variant == "binary_no_think":
        assert scores[:3] == [1.0, 0.0, 1.0]
    else:
        assert 0.0 < scores[1] < 1.0  # partial credit for the reasoning format


def test_extra_keys_reach_verl_validation_metrics(tokenizer):
    """verl's own validation aggregation logs every numeric extra key per data source (parse_error is skipped)."""
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    data = _batch(tokenizer, RESPONSES)
    _, outputs, _ = _score_with_verl(_compose(), tokenizer, data)
    infos = {key: [out["reward_extra_info"][key] for out in outputs] for key in EXTRA_KEYS}
    metrics = process_validation_metrics(["toolcall"] * len(outputs), [f"u{i}" for i in range(len(outputs))], infos)
    logged = set(metrics["toolcall"])
    assert {"score", "format_ok", "call_parsed", "names_match", "calls_match"} <= logged
    assert "parse_error" not in logged
    assert metrics["toolcall"]["score"]["mean@1"] == pytest.approx(1 / len(RESPONSES))
