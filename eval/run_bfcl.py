"""BFCL with bfcl-eval 2026.3.23 for Tool-N1 checkpoints: ``generate``, ``evaluate``, ``report``.

Registers our handler (:mod:`bfcl_handler`) in ``bfcl_eval``'s model map at run time (no edit to site-packages),
then drives bfcl-eval's own CLI. Outputs go under ``--project-root`` (exported as ``BFCL_PROJECT_ROOT`` before
``bfcl_eval`` is imported; never inside site-packages): ``result/``, ``score/``.

On a GPU host (training env serves, eval env evaluates; the served model name must equal the path string)::

    vllm serve /ckpt/tool-n1-7b --port 1053 &                       # from .venv/rl
    .venv/eval/bin/python eval/run_bfcl.py generate --project-root outputs/bfcl \\
        --model tool-n1/Tool-N1-7B --local-model-path /ckpt/tool-n1-7b --base-url http://127.0.0.1:1053/v1
    .venv/eval/bin/python eval/run_bfcl.py evaluate --project-root outputs/bfcl --model tool-n1/Tool-N1-7B
    .venv/eval/bin/python eval/run_bfcl.py report --project-root outputs/bfcl --model tool-n1/Tool-N1-7B

The paper's evaluation pairing: ``--prompt bfcl --block first --system replace`` (defaults: ``--prompt train``
with ``--block last``). ``report --scores FILE.json`` makes the table from per-category percentages instead.
Model keys use ``/`` and ``-`` only (bfcl maps result folder ``a_b`` back to key ``a/b``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import bfcl_report

from tool_n1.cli import ArgumentParser

SINGLE_TURN = ",".join(
    ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple", "irrelevance")
    + ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
)
SIDECAR = "tool_n1_handler.json"
OPTION_FLAGS = ("prompt", "data_mode", "block", "system", "max_tokens")


def set_project_root(path: str | None) -> Path:
    """Export ``BFCL_PROJECT_ROOT`` (must happen before ``bfcl_eval`` is imported)."""
    root = Path(path or os.environ.get("BFCL_PROJECT_ROOT") or "outputs/bfcl").resolve()
    if {"site-packages", "dist-packages"} & set(root.parts):
        raise SystemExit(f"--project-root {root} is inside site-packages; choose an output folder")
    loaded = sys.modules.get("bfcl_eval.constants.eval_config")
    if loaded is not None and Path(loaded.PROJECT_ROOT).resolve() != root:
        raise SystemExit(f"bfcl_eval already imported with project root {loaded.PROJECT_ROOT}, not {root}")
    root.mkdir(parents=True, exist_ok=True)
    os.environ["BFCL_PROJECT_ROOT"] = str(root)
    return root


def register(key: str, model_name: str, options) -> None:
    """Add ``key`` → our handler class to ``MODEL_CONFIG_MAPPING`` (shared by bfcl's generator and evaluator)."""
    if "_" in key or "FC" in key:
        raise SystemExit(f"model key {key!r}: use '/' and '-' only, no '_' and no 'FC' (bfcl-eval naming rules)")
    import bfcl_handler
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING, ModelConfig

    MODEL_CONFIG_MAPPING[key] = ModelConfig(
        model_name=model_name,
        display_name=key,
        url="https://arxiv.org/abs/2505.00024",
        org="Tool-N1",
        license="apache-2.0",
        model_handler=bfcl_handler.handler_class(options),
        is_fc_model=False,
        underscore_to_dot=False,
    )


def bfcl_cli(argv: list[str]) -> None:
    from bfcl_eval.__main__ import cli

    cli(argv, standalone_mode=False)


def wait_for_server(base_url: str, timeout: float) -> None:
    """Poll ``GET {base_url}/models`` until 200 (bfcl's own wait has no time limit)."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=10) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise SystemExit(f"no OpenAI-compatible server at {base_url} after {timeout:.0f} s ({last})")
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def model_dir(key: str) -> str:
    return key.replace("/", "_")


def resolve_options(args, result_dir: Path):
    """Handler options: explicit flags > the sidecar written by ``generate`` > defaults."""
    import bfcl_handler

    saved = {}
    sidecar = result_dir / model_dir(args.model) / SIDECAR
    if sidecar.exists():
        saved = json.loads(sidecar.read_text())["options"]
    given = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k, None) is not None}
    merged = {**saved, **given}
    if saved.get("prompt") != merged.get("prompt") and "block" not in given:
        merged.pop("block", None)  # re-pair the block policy with the new prompt
    return bfcl_handler.HandlerOptions(**merged)


def cmd_generate(args) -> None:
    """Generate replies against a running OpenAI-compatible server (completions endpoint, our prompt)."""
    root = set_project_root(args.project_root)
    result_dir = Path(args.result_dir or root / "result").resolve()
    os.environ["REMOTE_OPENAI_BASE_URL"] = args.base_url
    if args.tokenizer_path:
        os.environ["REMOTE_OPENAI_TOKENIZER_PATH"] = args.tokenizer_path
    wait_for_server(args.base_url, args.wait)
    options = resolve_options(args, Path("/nonexistent"))
    served = args.served_model or args.local_model_path or args.model
    register(args.model, served, options)
    folder = result_dir / model_dir(args.model)
    folder.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    sidecar = {
        "model": args.model,
        "served_model": served,
        "options": options.to_dict(),
        "bfcl_eval": version("bfcl-eval"),
    }
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    argv = ["generate", "--model", args.model, "--test-category", args.test_category, "--temperature"]
    argv += [str(args.temperature), "--backend", "vllm", "--skip-server-setup", "--result-dir", str(result_dir)]
    if args.local_model_path:
        argv += ["--local-model-path", str(Path(args.local_model_path).resolve())]
    if args.num_threads:
        argv += ["--num-threads", str(args.num_threads)]
    argv += ["--allow-overwrite"] * args.allow_overwrite + ["--include-input-log"] * args.include_input_log
    if args.ids:  # bfcl reads the ids from <project root>/test_case_ids_to_generate.json
        by_category: dict[str, list[str]] = {}
        for test_id in args.ids.split(","):
            by_category.setdefault(test_id.strip().rsplit("_", 1)[0], []).append(test_id.strip())
        (root / "test_case_ids_to_generate.json").write_text(json.dumps(by_category, indent=1) + "\n")
        argv.append("--run-ids")
    bfcl_cli(argv)


def cmd_evaluate(args) -> None:
    """Score result files with bfcl-eval's own checker, then print the report."""
    root = set_project_root(args.project_root)
    result_dir = Path(args.result_dir or root / "result").resolve()
    score_dir = Path(args.score_dir or root / "score").resolve()
    register(args.model, args.model, resolve_options(args, result_dir))
    argv = [
        "evaluate",
        "--model",
        args.model,
        "--test-category",
        args.test_category,
        "--result-dir",
        str(result_dir),
        "--score-dir",
        str(score_dir),
    ]
    bfcl_cli(argv + ["--partial-eval"] * args.partial_eval)
    if not args.no_report:
        args.score_dir, args.scores = str(score_dir), None
        return cmd_report(args)


def cmd_report(args) -> dict:
    """Print the paper's Table-2 row beside the paper's rows, BFCL's own figures, and write the JSON report."""
    if args.scores:
        scores, official = json.loads(Path(args.scores).read_text()), {}
        out = Path(args.output or Path(args.scores).with_suffix(".report.json"))
    else:
        root = Path(args.project_root or os.environ.get("BFCL_PROJECT_ROOT") or "outputs/bfcl").resolve()
        score_dir = Path(args.score_dir or root / "score").resolve()
        scores = bfcl_report.read_scores(score_dir, model_dir(args.model))
        if not scores:
            raise SystemExit(f"no score files under {score_dir / model_dir(args.model)}")
        official = bfcl_report.read_official(score_dir, args.model)
        out = Path(args.output or score_dir / model_dir(args.model) / "tool_n1_report.json")
    report = bfcl_report.build_report(args.label or args.model, scores, official)
    print(bfcl_report.render(report))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return report


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project-root",
        help="BFCL_PROJECT_ROOT: output folder (default $BFCL_PROJECT_ROOT "
        "or outputs/bfcl); never inside site-packages",
    )
    parser.add_argument(
        "--model",
        default="tool-n1/Tool-N1-7B",
        help="registry key, '/' and '-' only (default tool-n1/Tool-N1-7B); results go to result/<key with / → _>",
    )


def _handler_flags(parser: argparse.ArgumentParser) -> None:
    import_free = "(default: the value saved by generate, else %s)"
    parser.add_argument(
        "--prompt",
        choices=["train", "bfcl"],
        help="train: RL training system prompt; "
        "bfcl: the original BFCL handler's, byte-exact " + import_free % "train",
    )
    parser.add_argument(
        "--data-mode",
        choices=["improved", "faithful"],
        help="with --prompt train: the data pipeline mode the checkpoint was trained on " + import_free % "improved",
    )
    parser.add_argument(
        "--block",
        choices=["last", "first"],
        help="which <tool_call> block is read: last (training "
        "reward) or first (original eval) " + import_free % "last for train, first for original",
    )
    parser.add_argument(
        "--system",
        choices=["replace", "keep"],
        help="an entry's own system message: replace "
        "(original) or keep (appended after ours) " + import_free % "replace",
    )
    parser.add_argument("--max-tokens", type=int, help="cap on new tokens " + import_free % "4096, as BFCL")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help=cmd_generate.__doc__, description=cmd_generate.__doc__, allow_abbrev=False)
    _common(gen)
    _handler_flags(gen)
    gen.add_argument(
        "--base-url",
        default="http://127.0.0.1:1053/v1",
        help="OpenAI-compatible server (default http://127.0.0.1:1053/v1)",
    )
    gen.add_argument(
        "--local-model-path",
        help="checkpoint folder with config.json + tokenizer files (token "
        "counting); its path string is also the model name sent, so serve it as `vllm serve PATH`",
    )
    gen.add_argument("--served-model", help="model name sent when no --local-model-path (default: the key)")
    gen.add_argument("--tokenizer-path", help="tokenizer folder for a remote server (REMOTE_OPENAI_TOKENIZER_PATH)")
    gen.add_argument(
        "--test-category",
        default=SINGLE_TURN,
        help="comma list or bfcl group (default: the 13 single-turn categories)",
    )
    gen.add_argument("--temperature", type=float, default=0.001, help="sampling temperature (default 0.001, BFCL)")
    gen.add_argument("--num-threads", type=int, help="concurrent requests (default: bfcl's, 100)")
    gen.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    gen.add_argument("--result-dir", help="result folder (default <project root>/result)")
    gen.add_argument("-o", "--allow-overwrite", action="store_true", help="regenerate existing results")
    gen.add_argument("--include-input-log", action="store_true", help="store each formatted prompt in the results")
    gen.add_argument(
        "--ids",
        help="only these test ids (comma list, e.g. simple_python_0,parallel_3); written to "
        "<project root>/test_case_ids_to_generate.json for bfcl's --run-ids (replaces --test-category)",
    )
    gen.set_defaults(func=cmd_generate)
    ev = sub.add_parser("evaluate", help=cmd_evaluate.__doc__, description=cmd_evaluate.__doc__, allow_abbrev=False)
    _common(ev)
    _handler_flags(ev)
    ev.add_argument("--test-category", default=SINGLE_TURN, help="comma list (default: 13 single-turn categories)")
    ev.add_argument("--result-dir", help="result folder (default <project root>/result)")
    ev.add_argument("--score-dir", help="score folder (default <project root>/score)")
    ev.add_argument("--partial-eval", action="store_true", help="score only the ids present in the result files")
    ev.add_argument("--no-report", action="store_true", help="do not print the report afterwards")
    ev.add_argument("--label", help="row label in the report (default: the key)")
    ev.add_argument("--output", help="report JSON (default <score dir>/<model dir>/tool_n1_report.json)")
    ev.set_defaults(func=cmd_evaluate)
    rep = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__, allow_abbrev=False)
    _common(rep)
    rep.add_argument("--score-dir", help="score folder (default <project root>/score)")
    rep.add_argument(
        "--scores",
        help="JSON {category: percent} instead of score files; 'simple' or simple_python/"
        "simple_java/simple_javascript, the other 3 non-live and 4 live AST categories",
    )
    rep.add_argument("--label", help="row label (default: the key)")
    rep.add_argument(
        "--output", help="report JSON (default <score dir>/<model dir>/tool_n1_report.json, or <scores>.report.json)"
    )
    rep.set_defaults(func=cmd_report)
    return parser


def run(argv: list[str] | None = None):
    """Run one subcommand; returns what it returns (``report``: the report dict)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
