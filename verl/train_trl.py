"""Single-machine GRPO backend: TRL's ``GRPOTrainer`` on the verl parquet, with the Tool-N1 reward and verl's names.

For users without a GPU cluster (CPU, or one GPU; no vLLM). verl (``train_qwen.sh``) stays the cluster path and the
paper's; this backend reads the same ``train.parquet`` / ``test.parquet``, scores with the same
``tool_n1.reward.compute_score`` and takes its hyper-parameters from the same config file and the same dotted names
(``verl/config/tool_n1_grpo.yaml``; over verl's defaults, ``trl_recipe.VERL_DEFAULTS``), so ``rollout.n=4`` means the
same thing on both::

    .venv/rl/bin/python verl/train_trl.py --model /models/Qwen2.5-0.5B-Instruct \\
        --train-file data/verl/train.parquet --val-file data/verl/test.parquet --output-dir outputs/grpo_trl \\
        data.train_batch_size=8 actor_rollout_ref.rollout.n=4 data.max_response_length=256 --max-steps 20
    .venv/rl/bin/python verl/train_trl.py ... --resume          # continue from the last checkpoint in --output-dir

Mapping (``B`` = data.train_batch_size prompts per training step, ``n`` = rollout.n, ``M`` = ppo_mini_batch_size
prompts per optimizer step, clamped to ``B``; ``k = B / M`` optimizer steps per training step; ``W`` = processes)

=================================================  ===========================================================
verl name (paper Table 6 value)                    TRL ``GRPOConfig`` field
=================================================  ===========================================================
actor_rollout_ref.rollout.n (5)                    ``num_generations`` = n
data.train_batch_size (1024)                       ``generation_batch_size`` = B*n completions (TRL counts
                                                   completions, not prompts) = ``per_device_train_batch_size``
                                                   * W * ``steps_per_generation``
actor.ppo_mini_batch_size (256, verl default)      ``steps_per_generation`` = k * ``gradient_accumulation_steps``;
                                                   ``gradient_accumulation_steps`` = M*n / (W * micro)
actor.ppo_micro_batch_size_per_gpu (null)          ``per_device_train_batch_size`` = micro completions (null:
                                                   the largest divisor of M*n/W that is <= 8)
actor.optim.lr (1e-6)                              ``learning_rate``; ``lr_scheduler_type`` constant, 0 warm-up
actor.optim.weight_decay / betas (0.01, 0.9/0.999) ``weight_decay``, ``adam_beta1``/``adam_beta2`` (AdamW)
actor.grad_clip (1.0)                              ``max_grad_norm``
actor.clip_ratio[_low/_high] (0.2)                 ``epsilon`` / ``epsilon_high``
actor.ppo_epochs (1)                               ``num_iterations``
rollout.temperature / top_p / top_k (0.7, 1, -1)   ``temperature`` / ``top_p`` / ``top_k`` (-1 -> 0 = off)
actor.use_kl_loss, kl_loss_coef (true, 1e-3)       ``beta`` (0 when use_kl_loss is false: no reference model)
actor.kl_loss_type (low_var_kl)                    TRL's only estimator, k3 = exp(ref-logp)-(ref-logp)-1, which
                                                   is verl's low_var_kl without its [-10, 10] clamp;
                                                   ``use_bias_correction_kl`` False (verl has no IS factor)
actor.entropy_coeff (0)                            ``entropy_coef``
algorithm.filter_groups.enable,                    not in TRL: this backend's dynamic sampling
max_num_gen_batches (false, 0)                     (``trl_filter_groups.py``); metric reward (= score)
actor.loss_agg_mode (token-mean)                   ``loss_type`` "bnpo": token-mean over each micro-batch, divided
                                                   by grad-accumulation steps, as the original (vendored verl 0.2)
                                                   did; seq-mean-token-mean -> "grpo", seq-mean-token-sum-norm ->
                                                   "dr_grpo". (verl 0.9.1's token-mean divides by the tokens of
                                                   the whole mini-batch: that is TRL "dapo", ``trl.loss_type=dapo``;
                                                   both are equal when micro = M*n.)
algorithm.adv_estimator (grpo),                    ``scale_rewards`` "group": (r - group mean) / group std
algorithm.norm_adv_by_std_in_grpo (true)           (unbiased, as verl; TRL adds 1e-4, verl 1e-6); false -> "none"
data.max_prompt_length (4096)                      TRL 1.16 has no prompt limit: longer prompts (chat template,
                                                   generation prompt) are dropped here, as verl's
                                                   filter_overlong_prompts
data.max_response_length (8192)                    ``max_completion_length``
data.shuffle / data.seed (true / null -> 42)       ``shuffle_dataset`` / ``seed``
data.train_max_samples / val_max_samples (-1)      first N rows of each file (-1 = all)
trainer.total_epochs (7)                           ``num_train_epochs``
trainer.total_training_steps (null), --max-steps   ``max_steps`` = steps * k
trainer.save_freq (10)                             ``save_steps`` = save_freq * k (<= 0: no checkpoints)
trainer.test_freq (10), val_before_train (false)   ``eval_steps`` = test_freq * k on --val-file, greedy, 1 sample per
                                                   prompt (verl's validation), also at the end; <= 0 or no
                                                   --val-file: none; val_before_train: one evaluate() first
trainer.logger (console)                           ``report_to`` none; "wandb" adds wandb (project_name,
                                                   experiment_name -> WANDB_PROJECT, ``run_name``)
model.enable_gradient_checkpointing (true)         ``gradient_checkpointing``
model.lora_rank / lora_alpha / target_modules      ``peft_config`` = peft ``LoraConfig(r, lora_alpha,
(0 = full weights / 16 / all-linear)               target_modules)`` when lora_rank > 0; the KL reference is the
                                                   base with the adapter disabled (no second copy); ``final/`` holds
                                                   the merged model, so serving needs no peft
reward.custom_reward_function.reward_kwargs        passed to every ``compute_score`` call (mode, variant, flags)
(fixed)                                            ``use_vllm`` False, ``remove_unused_columns`` False,
                                                   ``logging_steps`` k, ``bf16`` on CUDA only, fp32 weights
=================================================  ===========================================================

``trl.<field>=value`` sets any other ``GRPOConfig`` field directly (applied last). ``+ablation=<name>`` merges
``config/ablation/<name>.yaml`` as Hydra would. Keys of the config that the TRL backend has no use for (vLLM, FSDP,
Ray, paths: the model and data come from the flags) are listed in the log and ignored; an unknown key is an error.

One training step = one generation of B*n completions and k optimizer steps, as in verl; every per-step file counts
training steps. Outputs in ``--output-dir``: ``checkpoint-<optimizer step>/`` (TRL/Trainer checkpoints),
``final/`` (the trained model + tokenizer, a Hugging Face folder), ``metrics.jsonl`` (one line per training step:
step, reward_mean, format_rate, exact_match_rate, completion_length, kl, ...), ``val_metrics.jsonl``,
``resolved_config.json`` (the verl-style values and the GRPOConfig built from them).

Multi-turn (``+ablation=multiturn``, config ``actor_rollout_ref.rollout.multi_turn.enable=true``): the BFCL
multi-turn split (``data_process/bfcl_multiturn_split.py``) with executed tools through TRL's ``environment_factory``,
one row per user turn (``--turns first``: only the first), scored by ``tool_n1.multiturn_reward``
(``trl_multiturn.py`` has the mapping, ``tool_n1_multiturn.trl_environment`` the environment)::

    .venv/rl/bin/python verl/train_trl.py --model M --train-file data/verl_multiturn/train.parquet \
        --output-dir outputs/grpo_trl_mt +ablation=multiturn data.train_batch_size=1 actor_rollout_ref.rollout.n=4 \
        data.max_prompt_length=4096 data.max_response_length=256 --max-steps 3

This file is the command and the trainer glue; beside it: ``trl_recipe.py`` (defaults, config file, ablations,
overrides), ``trl_grpo_config.py`` (the mapping above), ``trl_reward.py`` (the reward function), ``trl_data.py``
(parquet rows, over-long prompts), ``trl_metrics.py`` (``metrics.jsonl`` / ``val_metrics.jsonl``, resume trimming).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (tests): the trl_*.py modules beside this file
    sys.path.insert(0, str(HERE))

import trl_multiturn  # noqa: E402
from trl_data import filter_overlong, load_rows  # noqa: E402
from trl_filter_groups import dynamic_sampling_trainer  # noqa: E402
from trl_grpo_config import grpo_config_kwargs  # noqa: E402
from trl_metrics import METRICS_FILE, checkpoint_step, make_metrics_callback, truncate_metrics  # noqa: E402
from trl_recipe import DEFAULT_CONFIG, REWARD_KWARGS, ConfigError, ignored_keys, load_config  # noqa: E402
from trl_reward import ToolN1Reward  # noqa: E402

FINAL_DIR = "final"

log = logging.getLogger("tool_n1.train_trl")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_trl.py",
        description=(
            "Tool-N1 GRPO on one machine (TRL GRPOTrainer, CPU or one GPU, no vLLM): the verl parquet, the Tool-N1 "
            "reward and the verl recipe's config names. Mapping table: this file's docstring."
        ),
        epilog=(
            "overrides use the verl recipe's dotted names, for example:\n"
            "  data.train_batch_size=8 actor_rollout_ref.rollout.n=4 data.max_response_length=256\n"
            "  actor_rollout_ref.actor.optim.lr=1e-6 trainer.save_freq=5 trainer.test_freq=-1\n"
            "  reward.custom_reward_function.reward_kwargs.variant=lexico   +ablation=binary_no_think\n"
            "trl.<GRPOConfig field>=value sets a TRL field directly (e.g. trl.loss_type=dapo)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--model", required=True, help="local Hugging Face model folder (policy and KL reference)")
    parser.add_argument("--train-file", required=True, help="verl train.parquet (data_process/to_verl_parquet.py)")
    parser.add_argument("--val-file", help="verl test.parquet: greedy validation every trainer.test_freq steps")
    parser.add_argument("--output-dir", required=True, help="checkpoints, final/ model, metrics.jsonl")
    parser.add_argument(
        "--config",
        help=f"verl recipe YAML (default: {DEFAULT_CONFIG.relative_to(HERE.parent)} if present, else the built-in "
        "paper values); Hydra 'defaults' are not composed, missing keys take the built-in values",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="verl-style overrides (see below), applied in order"
    )
    parser.add_argument(
        "--max-steps", type=int, help="stop after this many training steps (overrides trainer.total_training_steps)"
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto (default): cuda if visible, else cpu"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint-* in --output-dir (fresh if none)"
    )
    parser.add_argument(
        "--turns",
        choices=trl_multiturn.TURNS,
        default="all",
        help="multi-turn mode (+ablation=multiturn): train on every user turn of each entry, or only the first [all]",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved values and GRPOConfig fields, then exit"
    )
    return parser


def resolve_device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device visible")
    return choice


def main(argv: list[str] | None = None) -> int:
    """The command line: train, exit status 0 (configuration errors exit 2 through argparse)."""
    train(argv)
    return 0


def train(argv: list[str] | None = None, *, score_fn: Callable[..., dict] | None = None) -> dict[str, Any]:
    """Run training; returns a summary dict (also written to ``resolved_config.json``). ``score_fn`` replaces
    ``compute_score`` (tests spy on it)."""
    args = build_parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        values, trl_fields = load_config(args.config, args.overrides)
        device = resolve_device(args.device)
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        output_dir = Path(args.output_dir)
        kwargs, plan = grpo_config_kwargs(
            values,
            trl_fields,
            output_dir=str(output_dir),
            world_size=world_size,
            device=device,
            max_steps=args.max_steps,
            has_val=args.val_file is not None,
        )
        multi_turn = trl_multiturn.plan(values, plan["reward_kwargs"]) if trl_multiturn.enabled(values) else None
        if multi_turn is not None:
            from tool_n1.multiturn_reward import compute_score

            plan["reward_kwargs"] = multi_turn["reward_kwargs"]
            if multi_turn["max_tool_calling_iterations"] and "max_tool_calling_iterations" not in trl_fields:
                kwargs["max_tool_calling_iterations"] = multi_turn["max_tool_calling_iterations"]
            probe = (score_fn or compute_score)("bfcl_multi_turn", "", "[]", {}, **plan["reward_kwargs"])
        else:
            from tool_n1.reward import compute_score

            probe = (score_fn or compute_score)("toolcall", "", "[]", {"prompt_type": "qwen"}, **plan["reward_kwargs"])
        if "score" not in probe:
            raise ConfigError("the score function returned no 'score'")
    except ConfigError as exc:
        raise SystemExit(f"train_trl.py: configuration error: {exc}") from None
    except ValueError as exc:  # compute_score: unknown variant / mode / flag
        raise SystemExit(f"train_trl.py: {REWARD_KWARGS}: {exc}") from None
    log.info("config: %s", values["_source"])
    if plan["mini_batch_clamped"]:
        log.info("ppo_mini_batch_size > train_batch_size: one optimizer step per training step")
    ignored = ignored_keys(values)
    if ignored:
        log.info("not used by the TRL backend: %s", ", ".join(ignored))
    if args.print_config:
        print(json.dumps({"values": values, "grpo_config": kwargs, "plan": plan}, indent=2, default=str))
        return {"grpo_config": kwargs, "plan": plan}

    if Path(args.model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if "wandb" in kwargs["report_to"]:
        os.environ.setdefault("WANDB_PROJECT", str(plan["project_name"]))

    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    main_process = int(os.environ.get("RANK", "0")) == 0
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_from = get_last_checkpoint(str(output_dir)) if args.resume else None
    if args.resume and resume_from is None:
        log.info("--resume: no checkpoint in %s, starting fresh", output_dir)
    if not args.resume and get_last_checkpoint(str(output_dir)) is not None:
        log.warning("%s holds checkpoints from an earlier run; they are not used (pass --resume)", output_dir)
    if main_process:
        truncate_metrics(output_dir, checkpoint_step(resume_from) if resume_from else 0)
    if resume_from:
        log.info("resuming from %s", resume_from)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if multi_turn is not None:
        from tool_n1_multiturn.trl_environment import use_tool_n1_format

        use_tool_n1_format(tokenizer)
        train = trl_multiturn.load_turn_rows(args.train_file, plan["train_max_samples"], args.turns)
        val = (
            trl_multiturn.load_turn_rows(args.val_file, plan["val_max_samples"], args.turns) if args.val_file else None
        )
    else:
        train = load_rows(args.train_file, plan["train_max_samples"])
        val = load_rows(args.val_file, plan["val_max_samples"]) if args.val_file else None
    if plan["filter_overlong_prompts"]:
        train, _ = filter_overlong(train, tokenizer, plan["max_prompt_length"], "train")
        if val is not None:
            val, _ = filter_overlong(val, tokenizer, plan["max_prompt_length"], "val")
    if len(train) < plan["prompts_per_step"]:
        raise SystemExit(
            f"train_trl.py: {len(train)} training prompts, fewer than data.train_batch_size "
            f"({plan['prompts_per_step']}); lower it or add data"
        )

    config = GRPOConfig(**kwargs)
    k = plan["optimizer_steps_per_step"]
    summary = {
        "model": args.model,
        "train_file": args.train_file,
        "val_file": args.val_file,
        "train_prompts": len(train),
        "val_prompts": len(val) if val is not None else 0,
        "device": device,
        "values": {key: v for key, v in values.items() if not key.startswith("_")},
        "config_source": values["_source"],
        "plan": plan,
        "grpo_config": {key: kwargs[key] for key in sorted(kwargs)},
    }
    if main_process:
        (output_dir / "resolved_config.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")

    environments = None
    if multi_turn is not None:
        from tool_n1_multiturn.trl_environment import MultiTurnReward, environment_factories

        reward = MultiTurnReward(plan["reward_kwargs"], score_fn)
        environments = environment_factories([*train, *(val or [])])
        for factory in environments.values():
            factory.max_tool_response_chars = multi_turn["max_tool_response_chars"]
        summary["multi_turn"] = {**multi_turn, "turns": args.turns, "environments": sorted(environments)}
    else:
        reward = ToolN1Reward(tokenizer, plan["reward_kwargs"], score_fn)
    total = config.max_steps // k if config.max_steps > 0 else None
    peft_config = None
    if plan["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **plan["lora"])
        log.info("LoRA policy (actor_rollout_ref.model.lora_rank): %s", plan["lora"])
    trainer = _trainer_class(dynamic_sampling_trainer(GRPOTrainer))(
        model=args.model,
        peft_config=peft_config,
        reward_funcs=[reward],
        args=config,
        train_dataset=train,
        eval_dataset=val if config.eval_strategy != "no" else None,
        processing_class=tokenizer,
        callbacks=[make_metrics_callback(output_dir, k, total)],
        environment_factory=environments,
    )
    trainer.filter_groups = plan["filter_groups"]
    if plan["filter_groups"]:
        log.info("dynamic sampling (algorithm.filter_groups): %s", plan["filter_groups"])
    if plan["val_before_train"]:
        trainer.evaluate()
    result = trainer.train(resume_from_checkpoint=resume_from)
    final = output_dir / FINAL_DIR
    trainer.model.config.use_cache = True  # saved for inference: training turns the KV cache off
    if peft_config is not None and main_process:  # the merged weights: a plain model that any server loads
        merged = trainer.model.merge_and_unload()
        merged.config.use_cache = True
        merged.save_pretrained(str(final))
    else:
        trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    summary.update(global_step=trainer.state.global_step, steps=trainer.state.global_step // k, final=str(final))
    summary["train_runtime_s"] = result.metrics.get("train_runtime")
    if main_process:
        (output_dir / "resolved_config.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("done: %d training steps; model in %s; metrics in %s", summary["steps"], final, output_dir / METRICS_FILE)
    return summary


def _trainer_class(base):
    """GRPOTrainer whose evaluation generates greedily (verl validation: do_sample False, n 1)."""

    class ToolN1GRPOTrainer(base):
        def _generate(self, prompts):
            if self.model.training or not hasattr(self, "generation_config"):
                return super()._generate(prompts)
            sampling = self.generation_config
            greedy = sampling.to_dict()
            greedy.update(do_sample=False, temperature=None, top_p=None, top_k=None, min_p=None)
            self.generation_config = type(sampling)(**{k: v for k, v in greedy.items() if not k.startswith("_")})
            try:
                return super()._generate(prompts)
            finally:
                self.generation_config = sampling

    return ToolN1GRPOTrainer


if __name__ == "__main__":
    sys.exit(main())
