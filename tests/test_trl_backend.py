"""The single-machine GRPO backend (``verl/train_trl.py``): config mapping, a real tiny GRPO run, resume.

Runs in the RL environment (``.venv/rl``: trl, torch CPU). ``verl/train_trl.py`` is loaded by path: the repository
root must never be on ``sys.path`` (our ``verl/`` folder would shadow the installed verl). Loading it puts ``verl/``
itself on ``sys.path`` for the ``trl_*.py`` modules beside it; ``load_config``, ``grpo_config_kwargs``,
``ConfigError`` and ``ToolN1Reward`` are reached through it, module state (``DEFAULT_CONFIG``) in ``trl_recipe``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env

GT_A = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])
GT_B = json.dumps([{"name": "get_time", "arguments": {"zone": "UTC"}}, {"name": "news", "arguments": {}}])
GT_C = json.dumps([{"name": "book", "arguments": {"id": 8}}])
GT_D = json.dumps([])
GROUND_TRUTHS = [GT_A, GT_B, GT_C, GT_D]


@pytest.fixture(scope="module")
def trl_backend():
    name = "tool_n1_train_trl_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "verl" / "train_trl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def mapped(backend, overrides=(), **kwargs):
    values, trl_fields = backend.load_config(None, list(overrides))
    return backend.grpo_config_kwargs(values, trl_fields, output_dir="/tmp/unused", **kwargs)


# ----------------------------------------------------------------------------------------------- config mapping


def test_paper_values_map_to_grpo_config(trl_backend):
    kwargs, plan = mapped(trl_backend)
    # Table 6: 1024 prompts x n=5 = 5120 completions per step; verl's ppo_mini_batch_size 256 -> 4 optimizer steps,
    # 1280 completions each = 160 micro-batches of 8 (the largest divisor of 1280 <= 8) on one process.
    assert plan["completions_per_step"] == 5120 and plan["optimizer_steps_per_step"] == 4
    assert kwargs["num_generations"] == 5
    assert kwargs["per_device_train_batch_size"] == 8
    assert kwargs["gradient_accumulation_steps"] == 160
    assert kwargs["steps_per_generation"] == 640  # 8 x 640 = 5120 completions per generation
    assert kwargs["learning_rate"] == 1e-6 and kwargs["lr_scheduler_type"] == "constant"
    assert kwargs["warmup_steps"] == 0 and kwargs["weight_decay"] == 0.01
    assert (kwargs["adam_beta1"], kwargs["adam_beta2"], kwargs["max_grad_norm"]) == (0.9, 0.999, 1.0)
    assert kwargs["beta"] == 1e-3 and kwargs["use_bias_correction_kl"] is False
    assert kwargs["temperature"] == 0.7 and kwargs["top_p"] == 1.0 and kwargs["top_k"] == 0
    assert kwargs["entropy_coef"] == 0.0
    assert kwargs["max_completion_length"] == 8192 and plan["max_prompt_length"] == 4096
    assert kwargs["num_train_epochs"] == 7 and kwargs["max_steps"] == -1
    assert kwargs["save_steps"] == 40 and kwargs["logging_steps"] == 4  # save_freq 10 training steps
    assert kwargs["loss_type"] == "bnpo" and kwargs["scale_rewards"] == "group"
    assert (kwargs["epsilon"], kwargs["epsilon_high"], kwargs["num_iterations"]) == (0.2, 0.2, 1)
    assert kwargs["use_vllm"] is False and kwargs["report_to"] == ["none"]
    assert plan["reward_kwargs"] == {"mode": "faithful", "variant": None}


def test_the_paper_values_come_from_the_recipe_file_only(trl_backend, monkeypatch, tmp_path):
    import trl_recipe  # verl/trl_recipe.py: on sys.path once train_trl.py is loaded; load_config reads it there
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    # the built-in values are verl's own ppo_trainer defaults, not a second copy of the recipe
    with initialize_config_module("verl.trainer.config", version_base=None):
        verl_config = compose("ppo_trainer")
    for key, value in trl_recipe.VERL_DEFAULTS.items():
        default = OmegaConf.select(verl_config, key)
        default = OmegaConf.to_container(default) if OmegaConf.is_config(default) else default
        assert default == value, (key, value, default)
    monkeypatch.setattr(trl_recipe, "DEFAULT_CONFIG", tmp_path / "absent.yaml")
    with pytest.raises(trl_backend.ConfigError, match="no such file"):
        trl_backend.load_config(None, [])
    with pytest.raises(trl_backend.ConfigError, match="no such file"):
        trl_backend.load_config(tmp_path / "absent.yaml", [])


def test_grpo_config_accepts_the_mapping(trl_backend, tmp_path):
    from trl import GRPOConfig

    kwargs, _ = mapped(trl_backend)
    kwargs["output_dir"] = str(tmp_path)
    config = GRPOConfig(**kwargs)
    assert config.generation_batch_size == 1024 * 5
    assert config.steps_per_generation == 640 and config.num_generations == 5


def test_overrides(trl_backend, tmp_path):
    kwargs, plan = mapped(
        trl_backend,
        [
            "actor_rollout_ref.rollout.n=4",
            "data.train_batch_size=8",
            "actor_rollout_ref.actor.optim.lr=2e-6",
            "+actor_rollout_ref.actor.kl_loss_coef=0",
            "reward.custom_reward_function.reward_kwargs.variant=lexico",
            "trl.loss_type=dapo",
        ],
        max_steps=3,
    )
    # 8 prompts < ppo_mini_batch_size 256: one optimizer step of 32 completions = 4 micro-batches of 8
    assert plan["mini_batch_clamped"] and plan["optimizer_steps_per_step"] == 1
    assert kwargs["num_generations"] == 4 and kwargs["per_device_train_batch_size"] == 8
    assert kwargs["gradient_accumulation_steps"] == 4 and kwargs["steps_per_generation"] == 4
    assert kwargs["learning_rate"] == 2e-6 and kwargs["beta"] == 0.0 and kwargs["max_steps"] == 3
    assert kwargs["loss_type"] == "dapo"
    assert plan["reward_kwargs"]["variant"] == "lexico"
    kwargs, plan = mapped(
        trl_backend,
        [
            "data.train_batch_size=8",
            "actor_rollout_ref.rollout.n=2",
            "actor_rollout_ref.actor.ppo_mini_batch_size=4",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "trainer.save_freq=3",
            "actor_rollout_ref.actor.use_kl_loss=false",
        ],
        max_steps=5,
    )
    # 2 optimizer steps per training step, each 4 prompts x 2 = 8 completions = 4 micro-batches of 2
    assert plan["optimizer_steps_per_step"] == 2
    assert (kwargs["per_device_train_batch_size"], kwargs["gradient_accumulation_steps"]) == (2, 4)
    assert kwargs["steps_per_generation"] == 8 and 2 * 8 == 8 * 2  # generation batch = 16 completions = 8 x n
    assert kwargs["max_steps"] == 10 and kwargs["save_steps"] == 6 and kwargs["logging_steps"] == 2
    assert kwargs["beta"] == 0.0
    from trl import GRPOConfig

    kwargs["output_dir"] = str(tmp_path)
    assert GRPOConfig(**kwargs).generation_batch_size == 16


def test_ablation_file_merges(trl_backend):
    import trl_recipe

    if not (trl_recipe.ABLATION_DIR / "lexico.yaml").is_file():
        pytest.skip("verl/config/ablation/lexico.yaml not present")
    _, plan = mapped(trl_backend, ["+ablation=lexico"])
    assert plan["reward_kwargs"]["variant"] == "lexico"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.train_batch_size=10", "actor_rollout_ref.actor.ppo_mini_batch_size=4"], "multiple of"),
        (
            [
                "data.train_batch_size=4",
                "actor_rollout_ref.rollout.n=2",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3",
            ],
            "must divide",
        ),
        (["actor_rollout_ref.rollout.n=1"], ">= 2"),
        (["data.train_batch_size=0"], "positive integer"),
        (["actor_rollout_ref.rollout.temprature=0.5"], "unknown config key"),
        (["actor_rollout_ref.actor.kl_loss_type=mse"], "k3"),
        (["actor_rollout_ref.actor.loss_agg_mode=token-sum"], "loss_agg_mode"),
        (["algorithm.adv_estimator=gae"], "GRPO only"),
        (["trl.not_a_field=1"], "not a GRPOConfig field"),
        (["+ablation=no_such_ablation"], "ablation"),
        (["data.train_batch_size"], "key=value"),
    ],
)
def test_invalid_configs_are_clear_errors(trl_backend, overrides, message):
    with pytest.raises(trl_backend.ConfigError, match=message):
        mapped(trl_backend, overrides)


def test_world_size_divisibility(trl_backend):
    with pytest.raises(trl_backend.ConfigError, match="processes"):
        mapped(trl_backend, ["data.train_batch_size=3", "actor_rollout_ref.rollout.n=3"], world_size=2)


def test_cli_reports_config_errors(trl_backend, tmp_path, capsys):
    argv = ["--model", "m", "--train-file", "t", "--output-dir", str(tmp_path), "data.train_batch_size=10"]
    with pytest.raises(SystemExit, match="configuration error.*multiple of"):
        trl_backend.train([*argv, "actor_rollout_ref.actor.ppo_mini_batch_size=4"])
    with pytest.raises(SystemExit, match="reward_kwargs"):
        trl_backend.train([*argv, "reward.custom_reward_function.reward_kwargs.variant=nope"])
    with pytest.raises(SystemExit) as exited:
        trl_backend.train(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--train-file", "--val-file", "--output-dir", "--config", "--max-steps", "--device"):
        assert flag in text
    assert "--resume" in text and "key=value" in text


def test_script_runs_standalone(tmp_path):
    """``python verl/train_trl.py`` (the documented command) resolves the recipe without a model or data."""
    command = [sys.executable, str(REPO / "verl" / "train_trl.py"), "--model", "m", "--train-file", "t"]
    command += ["--output-dir", str(tmp_path), "--print-config", "data.train_batch_size=8", "--max-steps", "2"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["grpo_config"]["max_steps"] == 2 and printed["plan"]["completions_per_step"] == 40


# ------------------------------------------------------------------------------------------------------ reward


def test_reward_adapter_scores_decoded_completions(trl_backend, tmp_path):
    from tiny_model import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    good = f"<think>weather</think><tool_call>{GT_A}</tool_call>"
    ids = [tokenizer(good + "<|im_end|>", add_special_tokens=False)["input_ids"], tokenizer("no call")["input_ids"]]
    logged = {}
    reward = trl_backend.ToolN1Reward(tokenizer, {"mode": "faithful", "variant": None})
    scores = reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=[[{"role": "assistant", "content": "ignored: the ids are decoded"}]] * 2,
        completion_ids=ids,
        reward_model=[{"style": "rule", "ground_truth": GT_A}] * 2,
        extra_info=[{"split": "train", "index": 0, "prompt_type": "qwen"}] * 2,
        data_source=["toolcall"] * 2,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert scores == [1.0, 0.0]
    assert logged["tool_n1/format_ok"] == 0.5 and logged["tool_n1/calls_match"] == 0.5
    reward = trl_backend.ToolN1Reward(tokenizer, {"variant": "binary_no_think"})
    assert reward([None], [f"<tool_call>{GT_A}</tool_call>"], reward_model=[{"ground_truth": GT_A}]) == [1.0]


# ------------------------------------------------------------------------------------------------ real GRPO runs


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A random 2-layer Qwen2 + ChatML tokenizer and 4-row train/test parquets with the verl schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tiny_model import build_tiny_qwen2

    root = tmp_path_factory.mktemp("trl_backend")
    model_dir = root / "model"
    build_tiny_qwen2(model_dir)
    rows = []
    for index, truth in enumerate(GROUND_TRUTHS):
        rows.append(
            {
                "data_source": "toolcall",
                "prompt": [
                    {"role": "system", "content": "You are an expert in composing functions. <tools></tools>"},
                    {"role": "user", "content": f"question {index}: the weather in Paris?"},
                ],
                "ability": "toolcall",
                "reward_model": {"style": "rule", "ground_truth": truth},
                "extra_info": {"split": "train", "index": index, "prompt_type": "qwen"},
            }
        )
    for name in ("train", "test"):
        pq.write_table(pa.Table.from_pylist(rows), root / f"{name}.parquet")
    return root


def tiny_argv(root, output_dir, *extra):
    return [
        "--model",
        str(root / "model"),
        "--train-file",
        str(root / "train.parquet"),
        "--output-dir",
        str(output_dir),
        "--device",
        "cpu",
        "data.train_batch_size=4",
        "actor_rollout_ref.rollout.n=2",
        "data.max_prompt_length=256",
        "data.max_response_length=12",
        "actor_rollout_ref.actor.optim.lr=1e-2",  # big enough to see the weights move in 2 steps
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        *extra,
    ]


class ScoreSpy:
    """Wraps ``compute_score``; records ground truths and adds a text-dependent bonus so advantages are non-zero."""

    def __init__(self):
        from tool_n1.reward import compute_score

        self.compute_score = compute_score
        self.truths = []

    def __call__(self, data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        self.truths.append(ground_truth)
        result = self.compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)
        return dict(result, score=result["score"] + (len(solution_str) % 3) / 10)


def read_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_step_grpo_run(trl_backend, tiny_setup, tmp_path):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "run"
    spy = ScoreSpy()
    summary = trl_backend.train(
        tiny_argv(
            tiny_setup,
            out,
            "--max-steps",
            "2",
            "--val-file",
            str(tiny_setup / "test.parquet"),
            "trainer.val_before_train=true",
        ),
        score_fn=spy,
    )
    assert summary["steps"] == 2 and summary["plan"]["completions_per_step"] == 8
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("reward_mean", "kl", "format_rate", "exact_match_rate", "completion_length"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), (key, row)
    # the config probe, greedy validation before training (one completion per test prompt), 2 training steps of
    # 4 prompts x 2 completions (each group's ground truth twice in a row), validation at the end
    assert len(spy.truths) == 1 + 4 + 16 + 4
    assert sorted(spy.truths[1:5]) == sorted(spy.truths[21:]) == sorted(GROUND_TRUTHS)
    train_truths = spy.truths[5:21]
    assert sorted(set(train_truths)) == sorted(GROUND_TRUTHS)
    assert all(train_truths[i] == train_truths[i + 1] for i in range(0, 16, 2))
    assert [row["step"] for row in read_metrics(out / "val_metrics.jsonl")] == [0, 2]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    before = load_file(tiny_setup / "model" / "model.safetensors")
    after = load_file(out / "final" / "model.safetensors")
    assert any(not torch.equal(before[name], after[name]) for name in before)
    resolved = json.loads((out / "resolved_config.json").read_text())
    assert resolved["grpo_config"]["num_generations"] == 2 and resolved["global_step"] == 2


def test_resume_does_not_duplicate_metrics(trl_backend, tiny_setup, tmp_path):
    out = tmp_path / "run"
    trl_backend.train(tiny_argv(tiny_setup, out, "--max-steps", "1", "trainer.save_freq=1"), score_fn=ScoreSpy())
    assert (out / "checkpoint-1").is_dir()
    assert [row["step"] for row in read_metrics(out / "metrics.jsonl")] == [1]
    # a run killed after logging step 2 but before its checkpoint: the line must not survive the resume
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 2, "global_step": 2, "reward_mean": 9.0}) + "\n")
    spy = ScoreSpy()
    summary = trl_backend.train(
        tiny_argv(tiny_setup, out, "--max-steps", "2", "trainer.save_freq=1", "--resume"), score_fn=spy
    )
    assert summary["steps"] == 2
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2]
    assert rows[1]["reward_mean"] != 9.0
    assert len(spy.truths) == 1 + 8  # the probe + one step of 4 prompts x 2
    assert (out / "checkpoint-2").is_dir()


class FirstGroupFlat:
    """A score function under which the groups of one prompt (ground truth ``GT_A``) always agree (score 0) while
    the others get a text-dependent spread: dynamic sampling must drop the flat group and draw others instead."""

    def __init__(self):
        self.spy = ScoreSpy()

    def __call__(self, data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        import zlib

        result = self.spy(data_source, solution_str, ground_truth, extra_info, **kwargs)
        spread = zlib.crc32(solution_str.encode("utf-8", "replace")) % 97 / 100  # two sampled texts differ
        return dict(result, score=0.0 if ground_truth == GT_A else spread)


def test_filter_groups_replaces_zero_variance_groups(trl_backend, tiny_setup, tmp_path):
    out = tmp_path / "dapo"
    score = FirstGroupFlat()
    argv = tiny_argv(
        tiny_setup,
        out,
        "--max-steps",
        "2",
        "algorithm.filter_groups.enable=true",
        "algorithm.filter_groups.max_num_gen_batches=6",
    )
    summary = trl_backend.train(argv, score_fn=score)
    # the resampling draw is seeded by the recipe's data.seed (1, as the original)
    assert summary["plan"]["filter_groups"] == {"metric": "reward", "max_num_gen_batches": 6, "seed": 1}
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2]
    # each step's first round holds GT_A's flat group (all 4 prompts per step): it is redrawn, so > 1 round
    assert all(row["filter_groups_gen_batches"] > 1 for row in rows), rows
    assert all(row["filter_groups_zero_std_kept"] == 0.0 for row in rows), rows
    assert len(score.spy.truths) > 1 + 16  # more completions scored than the 2 x 4 x 2 of plain GRPO


def test_filter_groups_fills_with_flat_groups_when_no_signal(trl_backend, tiny_setup, tmp_path):
    out = tmp_path / "flat"
    argv = tiny_argv(
        tiny_setup,
        out,
        "--max-steps",
        "1",
        "algorithm.filter_groups.enable=true",
        "algorithm.filter_groups.max_num_gen_batches=2",
    )
    trl_backend.train(argv, score_fn=lambda *a, **k: {"score": 0.0, "format_ok": 0.0})
    (row,) = read_metrics(out / "metrics.jsonl")
    assert row["filter_groups_gen_batches"] == 2.0 and row["filter_groups_zero_std_kept"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=acc"], "metric='acc'"),
        (["algorithm.filter_groups.enable=true", "algorithm.filter_groups.max_num_gen_batches=-1"], ">= 0"),
    ],
)
def test_filter_groups_config_errors(trl_backend, overrides, message):
    with pytest.raises(trl_backend.ConfigError, match=message):
        mapped(trl_backend, overrides)


def test_learning_rate_zero_leaves_weights_unchanged_and_saves_for_inference(trl_backend, tiny_setup, tmp_path):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "lr0"
    argv = tiny_argv(tiny_setup, out, "--max-steps", "2")
    argv[argv.index("actor_rollout_ref.actor.optim.lr=1e-2")] = "actor_rollout_ref.actor.optim.lr=0"
    trl_backend.train(argv, score_fn=ScoreSpy())
    rows = read_metrics(out / "metrics.jsonl")
    assert any(row["grad_norm"] and row["grad_norm"] > 0 for row in rows), rows  # there was a gradient to apply
    before = load_file(tiny_setup / "model" / "model.safetensors")
    after = load_file(out / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name].float(), after[name].float()) for name in before)
    assert json.loads((out / "final" / "config.json").read_text())["use_cache"] is True


def test_lora_policy_trains_adapters_and_saves_a_merged_model(trl_backend, tiny_setup, tmp_path):
    """actor_rollout_ref.model.lora_rank > 0: peft adapters train (base weights frozen), and final/ is a plain model
    with the base model's tensor names and merged weights, loadable without peft."""
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    overrides = ["actor_rollout_ref.model.lora_rank=4", "actor_rollout_ref.model.lora_alpha=8", "--max-steps", "2"]
    summary = trl_backend.train(tiny_argv(tiny_setup, out, *overrides), score_fn=ScoreSpy())
    assert summary["plan"]["lora"] == {"r": 4, "lora_alpha": 8, "target_modules": "all-linear"}
    rows = read_metrics(out / "metrics.jsonl")
    assert any(row["grad_norm"] and row["grad_norm"] > 0 for row in rows), rows
    assert not (out / "final" / "adapter_config.json").exists()
    before = load_file(tiny_setup / "model" / "model.safetensors")
    after = load_file(out / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed and all("proj" in name for name in changed), changed  # only LoRA-wrapped linear layers move
    assert json.loads((out / "final" / "config.json").read_text())["use_cache"] is True


def test_lora_rank_must_be_a_non_negative_integer(trl_backend):
    with pytest.raises(trl_backend.ConfigError, match="lora_rank"):
        trl_backend.grpo_config_kwargs(
            trl_backend.load_config(None, ["actor_rollout_ref.model.lora_rank=-1"])[0], output_dir="x"
        )


@pytest.mark.gpu
def test_two_step_grpo_run_on_gpu(trl_backend, tiny_setup, tmp_path):
    out = tmp_path / "gpu"
    argv = tiny_argv(tiny_setup, out, "--max-steps", "2")
    argv[argv.index("--device") + 1] = "cuda"
    summary = trl_backend.train(argv)
    assert summary["device"] == "cuda" and summary["steps"] == 2
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["reward_mean"]) and math.isfinite(row["kl"]) for row in rows)
