"""The GRPO recipe's Hydra config, composed with the installed verl 0.9.1 and checked by verl's own functions.

verl/validate_config.py is loaded by path (never put the repository root on sys.path: its verl/ folder would stand
in for the installed package). Also: train_qwen.sh --dry-run / --help as subprocesses.
"""

import importlib.util
import os
import subprocess

import pytest
from tiny_model import build_tiny_qwen2, write_toy_parquet

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env

ABLATIONS = sorted(p.stem for p in (REPO / "verl" / "config" / "ablation").glob("*.yaml"))

# The original launch command (qwen_rl.sh -> verl/examples/agent/qwen.sh), variables substituted.
ORIGINAL = [
    "algorithm.adv_estimator=grpo",
    "actor_rollout_ref.actor.use_kl_loss=True",
    "actor_rollout_ref.actor.kl_loss_coef=0.001",
    "actor_rollout_ref.actor.entropy_coeff=0",
    "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
    "actor_rollout_ref.actor.optim.lr=1e-6",
    "actor_rollout_ref.actor.fsdp_config.param_offload=False",
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload=False",
    "actor_rollout_ref.actor.use_dynamic_bsz=True",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=30720",
    "actor_rollout_ref.model.enable_gradient_checkpointing=True",
    "actor_rollout_ref.rollout.tensor_model_parallel_size=2",
    "actor_rollout_ref.rollout.gpu_memory_utilization=0.6",
    "actor_rollout_ref.rollout.temperature=0.7",
    "actor_rollout_ref.rollout.n=5",
    "actor_rollout_ref.ref.fsdp_config.param_offload=True",
    "actor_rollout_ref.model.use_remove_padding=True",
    "data.train_batch_size=1024",
    "data.val_batch_size=1312",
    "data.max_prompt_length=4096",
    "data.max_response_length=8192",
    "algorithm.kl_ctrl.kl_coef=0.001",
    "trainer.critic_warmup=0",
    "trainer.logger=['console']",
    "+trainer.val_before_train=False",
    "+actor_rollout_ref.actor.fsdp_config.grad_offload=False",
    "trainer.default_hdfs_dir=null",
    "trainer.n_gpus_per_node=8",
    "trainer.nnodes=1",
    "trainer.save_freq=10",
    "trainer.test_freq=10",
    "trainer.total_epochs=7",
]


@pytest.fixture(scope="module")
def validator():
    spec = importlib.util.spec_from_file_location("tool_n1_validate_config", REPO / "verl" / "validate_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("verl_config")
    build_tiny_qwen2(root / "model")
    write_toy_parquet(root / "data" / "train.parquet", split="train")
    write_toy_parquet(root / "data" / "test.parquet", split="test")
    for subset in ("toolace_only", "xlam_only", "toolace_subset", "toolace_subset_rl_half"):
        write_toy_parquet(root / "data" / subset / "train.parquet")
    return {"model": str(root / "model"), "data": str(root / "data")}


def ours(paths, *extra):
    return [f"tool_n1.data_dir={paths['data']}", f"actor_rollout_ref.model.path={paths['model']}", *extra]


def verdict(validator, overrides, base="tool_n1", strict_paths=False):
    valid, lines = validator.validate(overrides, base=base, strict_paths=strict_paths)
    return valid, "\n".join(lines)


def test_recipe_is_valid_and_holds_the_paper_values(validator, paths):
    valid, report = verdict(validator, ours(paths), strict_paths=True)
    assert valid, report
    assert report.endswith("RESULT: VALID")
    assert "custom_reward_function" not in report.split("[3]")[0]  # no error before the reward line
    cfg = validator.compose(ours(paths))
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    expected = {
        "algorithm.adv_estimator": "grpo",
        "data.train_batch_size": 1024,
        "data.max_prompt_length": 4096,
        "data.max_response_length": 8192,
        "data.filter_overlong_prompts": True,
        "trainer.total_epochs": 7,
        "trainer.save_freq": 10,
        "trainer.test_freq": 10,
        "trainer.val_before_train": False,
        "trainer.logger": ["console"],
    }
    for key, value in expected.items():
        section, name = key.split(".")
        assert cfg[section][name] == value, key
    assert (rollout.name, rollout.n, rollout.temperature, rollout.tensor_model_parallel_size) == ("vllm", 5, 0.7, 2)
    assert (actor.optim.lr, actor.use_kl_loss, actor.kl_loss_coef, actor.kl_loss_type) == (
        1e-6,
        True,
        1e-3,
        "low_var_kl",
    )
    assert (actor.entropy_coeff, actor.loss_agg_mode, actor.use_dynamic_bsz) == (0, "token-mean", True)
    assert actor.ppo_max_token_len_per_gpu == 30720
    assert cfg.actor_rollout_ref.ref.fsdp_config.param_offload is True
    assert cfg.actor_rollout_ref.model.enable_gradient_checkpointing and cfg.actor_rollout_ref.model.use_remove_padding
    fn = cfg.reward.custom_reward_function
    assert (fn.path, fn.name, dict(fn.reward_kwargs)) == (
        "pkg://tool_n1.reward",
        "compute_score",
        {"mode": "faithful", "variant": None},
    )
    assert cfg.data.train_files == os.path.join(paths["data"], "train.parquet")


# verl's LoRA checks read the installed vllm's version: without vllm (.venv/rl) they fail by design, so the LoRA
# preset is validated in .venv/rl-vllm (tests/test_verl_cpu_platform.py::test_lora_preset_validates_with_vllm).
NEEDS_VLLM = {"lora_grpo"}


@pytest.mark.parametrize("name", ABLATIONS)
def test_every_ablation_is_valid(validator, paths, name):
    if name in NEEDS_VLLM and importlib.util.find_spec("vllm") is None:
        pytest.skip(f"{name}: verl's LoRA check needs vllm; validated in .venv/rl-vllm")
    valid, report = verdict(validator, ours(paths, f"+ablation={name}"), strict_paths=True)
    assert valid, report


def test_ablations_change_only_what_they_say(validator, paths):
    fn = validator.compose(ours(paths, "+ablation=partial_think")).reward.custom_reward_function
    assert dict(fn.reward_kwargs) == {"mode": "faithful", "variant": "partial_think"}
    cfg = validator.compose([f"tool_n1.data_dir={paths['data']}", "+ablation=llama3.1_8b"])
    assert cfg.actor_rollout_ref.model.path == "meta-llama/Llama-3.1-8B-Instruct"
    assert cfg.reward.custom_reward_function.reward_kwargs.variant == "llama"
    cfg = validator.compose(ours(paths, "+ablation=xlam_only"))
    assert cfg.data.train_files == os.path.join(paths["data"], "xlam_only", "train.parquet")
    assert cfg.data.val_files == os.path.join(paths["data"], "test.parquet")
    # the SFT-then-RL run has no default model: the validator says so
    valid, report = verdict(validator, [f"tool_n1.data_dir={paths['data']}", "+ablation=sft_then_rl"])
    assert not valid and "Environment variable 'MODEL_PATH' not found" in report


@pytest.mark.parametrize(
    ("override", "check", "reason"),
    [
        ("+trainer.val_before_train=False", "[1]", "Could not append to config"),
        ("+actor_rollout_ref.actor.fsdp_config.grad_offload=False", "[2]", "grad_offload"),
        ("actor_rollout_ref.rollout.mode=sync", "[4]", "'sync' has been removed"),
        ("actor_rollout_ref.rollout.name=hf", "[4]", "'hf' not in"),
        ("reward.custom_reward_function.path=null", "[3]", "custom_reward_function.path is not set"),
        ("reward.custom_reward_function.path=/nonexistent/reward.py", "[3]", "FileNotFoundError"),
        ("reward.custom_reward_function.name=compute_scores", "[3]", "object_name='compute_scores'"),
        ("reward_model.reward_manager=batch", "[3]", "Unknown reward manager: batch"),
        ("+reward.custom_reward_function.reward_kwargs.variant=v9", "[3]", "v9"),
    ],
)
def test_invalid_keys_are_rejected_with_the_reason(validator, paths, override, check, reason):
    valid, report = verdict(validator, ours(paths, override))
    assert not valid, report
    assert report.endswith("RESULT: INVALID")
    failing = [line for line in report.splitlines() if line.startswith(check) and reason in line]
    assert failing, report


def test_original_command_is_invalid_on_current_verl(validator, paths):
    original = [*ORIGINAL, f"actor_rollout_ref.model.path={paths['model']}"]
    valid, report = verdict(validator, original, base="verl")
    assert not valid and "[1] hydra compose FAILED" in report and "Could not append" in report
    # with '+val_before_train' fixed, composition passes and the other two faults show
    fixed = [o.replace("+trainer.val_before_train", "trainer.val_before_train") for o in original]
    valid, report = verdict(validator, fixed, base="verl")
    assert not valid
    assert "[2] verl validate_config FAILED" in report and "grad_offload" in report
    assert "[5] mandatory values missing" in report and "actor_rollout_ref.rollout.name" in report


def test_cli_exit_codes(validator, paths, capsys):
    assert validator.main(ours(paths)) == 0
    assert capsys.readouterr().out.rstrip().endswith("RESULT: VALID")
    assert validator.main(ours(paths, "reward.custom_reward_function.path=null")) == 1
    assert capsys.readouterr().out.rstrip().endswith("RESULT: INVALID")


def _run_script(*args, env=None):
    return subprocess.run(
        ["bash", str(REPO / "verl" / "train_qwen.sh"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO / "verl",  # the original's `cd verl && bash train_qwen.sh`
        env={**os.environ, **(env or {})},
    )


def test_train_script_dry_run_prints_the_resolved_config(paths, tmp_path):
    env = {"DATA_DIR": paths["data"], "MODEL_PATH": paths["model"], "N_GPUS_PER_NODE": "4", "ROLLOUT_TP": "1"}
    out = _run_script("--dry-run", "+ablation=partial_think", "trainer.total_epochs=3", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    # the installed verl ran, not our verl/ folder
    assert "# verl 0.9.1 from " in text and "site-packages" in text.splitlines()[0]
    assert f"path: {paths['model']}" in text
    assert f"train_files: {paths['data']}/train.parquet" in text
    assert "variant: partial_think" in text and "mode: faithful" in text
    assert "n_gpus_per_node: 4" in text and "tensor_model_parallel_size: 1" in text
    assert "total_epochs: 3" in text  # "$@" wins over the script's own overrides
    assert (
        "default_local_dir: " + str(REPO / "checkpoints" / "tool_n1" / "qwen2.5_7b_grpo_reward_partial_think") in text
    )
    import yaml

    cfg = yaml.safe_load(text)  # the first line is a YAML comment
    assert cfg["actor_rollout_ref"]["rollout"]["name"] == "vllm"
    assert cfg["tool_n1"]["data_dir"] == paths["data"]
    assert "???" not in yaml.safe_dump({k: v for k, v in cfg.items() if k not in ("reward", "reward_model")})


def test_train_script_help_documents_every_variable():
    out = _run_script("--help")
    assert out.returncode == 0
    script = (REPO / "verl" / "train_qwen.sh").read_text()
    for var in ("MODEL_PATH", "DATA_DIR", "TRAIN_FILE", "VAL_FILE", "CKPT_DIR", "OUTPUT_DIR", "NNODES"):
        assert f"{var:<17}" in out.stdout or f"  {var} " in out.stdout, var
        assert var in script
    for word in (
        "N_GPUS_PER_NODE",
        "ROLLOUT_TP",
        "PROJECT",
        "EXPERIMENT",
        "LOGGER",
        "RAY_ADDRESS",
        "ray start --head",
    ):
        assert word in out.stdout, word
    for name in ABLATIONS:
        assert name in out.stdout


def test_train_script_refuses_to_start_without_gpu_and_vllm(paths):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    out = _run_script(env={"DATA_DIR": paths["data"], "OUTPUT_DIR": paths["data"] + "/../run"})
    assert out.returncode == 1
    assert "PREFLIGHT: FAILED" in out.stdout and "ERROR: no CUDA device visible" in out.stdout, out.stdout
    assert "preflight failed" in out.stderr
