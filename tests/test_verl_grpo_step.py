"""One GRPO update on CPU with a tiny random Qwen2, using verl 0.9.1's own advantage and loss functions.

HF ``generate`` stands in for the vLLM rollout (verl 0.9.1 has no HF rollout); rollouts are scored by our reward;
then verl's ``compute_grpo_outcome_advantage`` -> ``get_policy_loss_fn(<config>)`` + ``kl_penalty(low_var_kl)`` +
``agg_loss(token-mean)`` -> backward -> grad clip -> AdamW with the recipe's lr, all settings read from our config.
"""

import importlib.util
import json

import pytest
from tiny_model import build_tiny_qwen2, build_tiny_tokenizer, toy_rows

from tests.conftest import REPO
from tool_n1.prompts import format_response
from tool_n1.reward import compute_score

pytestmark = pytest.mark.rl_env

N = 4  # responses per prompt (the recipe uses 5; 4 keeps the test small)
MAX_NEW = 16


def _compose():
    spec = importlib.util.spec_from_file_location("tool_n1_validate_config", REPO / "verl" / "validate_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compose(["tool_n1.data_dir=/unused"])


def _token_logprobs(model, input_ids, attention_mask, response_len):
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -response_len - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, -response_len:, None]).squeeze(-1)


def test_one_grpo_update_step():
    import copy

    import numpy as np
    import torch
    from verl.trainer.ppo import core_algos
    from verl.utils.config import omega_conf_to_dataclass

    cfg = _compose()
    actor_cfg = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert cfg.algorithm.adv_estimator == "grpo" and actor_cfg.loss_agg_mode == "token-mean"

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_qwen2(tokenizer=tokenizer)
    ref_model = copy.deepcopy(model).eval()  # the frozen reference policy of the KL loss

    # --- rollout stand-in: 2 prompts x N samples at the recipe's temperature -------------------------------------
    rows = toy_rows(2)
    prompt_texts = [
        tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows
    ]
    enc = tokenizer([t for t in prompt_texts for _ in range(N)], return_tensors="pt", padding=True)
    model.eval()
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=cfg.actor_rollout_ref.rollout.temperature,
            max_new_tokens=MAX_NEW,
            min_new_tokens=MAX_NEW,  # fixed length keeps the hand-built masks simple
            pad_token_id=tokenizer.pad_token_id,
        )
    responses = out[:, enc["input_ids"].shape[1] :]
    # a random model never writes a correct call: put two ideal answers into group 0 so it has a reward spread;
    # group 1 keeps its sampled (all-zero) rollouts
    gold = [json.loads(rows[0]["reward_model"]["ground_truth"]), json.loads(rows[1]["reward_model"]["ground_truth"])]
    ideal = tokenizer(format_response(gold[0], think="ok"))["input_ids"] + [tokenizer.eos_token_id]
    responses = torch.nn.functional.pad(
        responses, (0, max(0, len(ideal) - responses.shape[1])), value=tokenizer.pad_token_id
    )
    response_mask = torch.ones_like(responses)
    for i in (0, 1):
        responses[i] = tokenizer.pad_token_id
        responses[i, : len(ideal)] = torch.tensor(ideal)
        response_mask[i] = 0
        response_mask[i, : len(ideal)] = 1
    response_mask[2:, MAX_NEW:] = 0
    response_len = responses.shape[1]

    # --- reward: our compute_score with the config's reward_kwargs, on the decoded responses (as verl does) -------
    kwargs = dict(cfg.reward.custom_reward_function.reward_kwargs)
    scores = []
    for i in range(2 * N):
        row = rows[i // N]
        text = tokenizer.decode(responses[i][response_mask[i].bool()], skip_special_tokens=True)
        scores.append(
            compute_score("toolcall", text, row["reward_model"]["ground_truth"], row["extra_info"], **kwargs)["score"]
        )
    assert scores == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    token_level_rewards = torch.zeros(responses.shape, dtype=torch.float32)
    last = response_mask.sum(dim=1) - 1
    token_level_rewards[torch.arange(2 * N), last] = torch.tensor(scores)

    # --- verl's GRPO advantage ------------------------------------------------------------------------------------
    index = np.array(["p0"] * N + ["p1"] * N, dtype=object)
    advantages, returns = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards,
        response_mask=response_mask.float(),
        index=index,
        norm_adv_by_std_in_grpo=cfg.algorithm.norm_adv_by_std_in_grpo,
    )
    adv = advantages[:, 0]
    assert torch.all(advantages[N:] == 0), "an all-equal group must have zero advantage"
    expected = 0.5 / torch.tensor([1.0, 1, 0, 0]).std()  # (r - mean) / (unbiased std + eps)
    assert adv[:2].tolist() == pytest.approx([expected.item()] * 2, rel=1e-4)
    assert adv[2:N].tolist() == pytest.approx([-expected.item()] * 2, rel=1e-4)
    assert torch.all((advantages == 0) | response_mask.bool())  # nothing outside the mask

    # --- verl's policy loss + low_var_kl + token-mean, one optimizer step -----------------------------------------
    input_ids = torch.cat([enc["input_ids"], responses], dim=1)
    attention_mask = torch.cat([enc["attention_mask"], response_mask], dim=1)
    mask = response_mask.float()
    with torch.no_grad():
        old_log_prob = _token_logprobs(model, input_ids, attention_mask, response_len)
        ref_log_prob = _token_logprobs(ref_model, input_ids, attention_mask, response_len)
    model.train()
    optim = cfg.actor_rollout_ref.actor.optim
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    log_prob = _token_logprobs(model, input_ids, attention_mask, response_len)
    policy_loss_fn = core_algos.get_policy_loss_fn(actor_cfg.policy_loss.loss_mode)
    pg_loss, pg_metrics = policy_loss_fn(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=mask,
        loss_agg_mode=actor_cfg.loss_agg_mode,
        config=actor_cfg,
    )
    kld = core_algos.kl_penalty(log_prob, ref_log_prob, kl_penalty=actor_cfg.kl_loss_type)
    kl_loss = core_algos.agg_loss(loss_mat=kld, loss_mask=mask, loss_agg_mode=actor_cfg.loss_agg_mode)
    loss = pg_loss + actor_cfg.kl_loss_coef * kl_loss  # entropy_coeff is 0 in the recipe
    assert actor_cfg.entropy_coeff == 0
    assert torch.isfinite(loss) and torch.isfinite(pg_loss) and kl_loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=actor_cfg.grad_clip)
    assert torch.isfinite(grad_norm) and grad_norm > 0
    optimizer.step()
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert len(changed) == len(before), f"unchanged: {sorted(set(before) - set(changed))}"
    # a second forward after the step: the policy moved (lr 1e-6: by ~1e-6, so the k3 KL underflows to ~0 in fp32)
    with torch.no_grad():
        new_log_prob = _token_logprobs(model, input_ids, attention_mask, response_len)
    kl_after = core_algos.agg_loss(
        loss_mat=core_algos.kl_penalty(new_log_prob, ref_log_prob, kl_penalty="low_var_kl"),
        loss_mask=mask,
        loss_agg_mode="token-mean",
    )
    assert not torch.equal(new_log_prob, old_log_prob)
    assert torch.isfinite(kl_after) and kl_after >= 0
