"""BFCL with bfcl-eval 2026.3.23 for Tool-N1 checkpoints: ``generate``, ``evaluate``, ``report``.

Registers our handler (:mod:`bfcl_handler`) in ``bfcl_eval``'s model map at run time (no edit to site-packages),
then drives bfcl-eval's own CLI. Outputs go under ``--project-root`` (exported as ``BFCL_PROJECT_ROOT`` before
``bfcl_eval`` is imported; never inside site-packages): ``result/``, ``score/``.

On a GPU host (training env serves, eval env evaluates; requests carry the model path unless
``--served-model NAME`` names what the server serves)::

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

import bfcl_abstention
import bfcl_report

from tool_n1.cli import ArgumentParser

SINGLE_TURN = ",".join(
    ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple", "irrelevance")
    + ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
)
MULTI_TURN = "multi_turn_base,multi_turn_miss_func,multi_turn_miss_param,multi_turn_long_context"
#: memory_vector needs a sentence-embedding model from the hub; kv and rec_sum run offline.
MEMORY = "memory_kv,memory_rec_sum"
GROUPS = {"paper": SINGLE_TURN, "multi-turn": MULTI_TURN, "memory": MEMORY, "extended": f"{SINGLE_TURN},{MULTI_TURN}"}
SIDECAR = "tool_n1_handler.json"
OPTION_FLAGS = ("prompt", "data_mode", "block", "system", "max_tokens")
#: Our prompt formats for format sensitivity (``--formats``): each is a prompt a checkpoint may meet; the block
#: policy stays paired with the prompt (``bfcl_handler.DEFAULT_BLOCK``).
FORMATS = {
    "train": {"prompt": "train", "data_mode": "improved", "system": "replace"},
    "train-faithful": {"prompt": "train", "data_mode": "faithful", "system": "replace"},
    "train-keep": {"prompt": "train", "data_mode": "improved", "system": "keep"},
    "bfcl": {"prompt": "bfcl", "system": "replace"},
    "bfcl-keep": {"prompt": "bfcl", "system": "keep"},
}


def categories(value: str) -> str:
    """``--test-category``: a group name of :data:`GROUPS` or bfcl's own comma list / group."""
    return GROUPS.get(value, value)


def runs(args) -> list[tuple[str, dict]]:
    """``(model key, option overrides)`` per run: one; one per seed (``--seeds N``: key/seed-k, request seed k);
    or one per prompt format (``--formats a,b``: key/fmt-a with :data:`FORMATS` [a])."""
    seeds, formats = getattr(args, "seeds", None), getattr(args, "formats", None)
    if seeds and formats:
        raise SystemExit("--seeds and --formats are separate runs; give one of them")
    if seeds:
        send = not getattr(args, "no_request_seed", False)
        return [(f"{args.model}/seed-{k}", {"seed": k if send else None}) for k in range(1, seeds + 1)]
    if formats:
        unknown = [name for name in formats.split(",") if name not in FORMATS]
        if unknown:
            raise SystemExit(f"unknown --formats {unknown}; valid: {', '.join(FORMATS)}")
        return [(f"{args.model}/fmt-{name}", FORMATS[name]) for name in formats.split(",")]
    return [(args.model, {})]


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


def register(key: str, model_name: str, options, served_model: str | None = None) -> None:
    """Add ``key`` → our handler class to ``MODEL_CONFIG_MAPPING`` (shared by bfcl's generator and evaluator);
    ``served_model``: the model name every request carries (None: bfcl's local model path, else ``model_name``)."""
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
        model_handler=bfcl_handler.handler_class(options, served_model),
        is_fc_model=False,
        underscore_to_dot=False,
    )


def register_scored_models(score_dir: Path) -> None:
    """Register every model whose scores already sit in ``score_dir``: bfcl's summary tables list all of them and
    look each up in its model map (an earlier run in the same project root would raise ``KeyError``)."""
    import bfcl_handler
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING

    if not score_dir.is_dir():
        return
    for folder in score_dir.iterdir():
        key = folder.name.replace("_", "/")
        if folder.is_dir() and key not in MODEL_CONFIG_MAPPING and "FC" not in key:
            register(key, key, bfcl_handler.HandlerOptions())


def bfcl_cli(argv: list[str]) -> None:
    from bfcl_eval.__main__ import cli

    cli(argv, standalone_mode=False)


def wait_for_server(base_url: str, timeout: float, api_key: str | None = None) -> None:
    """Poll ``GET {base_url}/models`` (with the API key) until 200, every 2 s, at most ``timeout`` s; a 401/403
    ends the wait at once (a wrong or missing key does not become ready by waiting)."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    while True:
        try:
            request = urllib.request.Request(base_url.rstrip("/") + "/models", headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise SystemExit(
                    f"{base_url}: HTTP {exc.code}: the server refused the API key (pass it with --api-key-env NAME)"
                ) from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise SystemExit(f"no OpenAI-compatible server at {base_url} after {timeout:.0f} s ({last})")
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def api_key_from_env(name: str | None) -> str | None:
    """The API key in environment variable ``name`` (``None`` without a name; an error when it is unset)."""
    if not name:
        return None
    key = os.environ.get(name)
    if not key:
        raise SystemExit(f"--api-key-env {name}: the environment variable is not set")
    return key


def model_dir(key: str) -> str:
    return key.replace("/", "_")


def resolve_options(args, result_dir: Path, key: str | None = None, overrides: dict | None = None):
    """Handler options: a run's overrides > explicit flags > the sidecar written by ``generate`` > defaults."""
    import bfcl_handler

    saved = {}
    sidecar = result_dir / model_dir(key or args.model) / SIDECAR
    if sidecar.exists():
        saved = json.loads(sidecar.read_text())["options"]
    given = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k, None) is not None}
    merged = {**saved, **given, **(overrides or {})}
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
    api_key = api_key_from_env(args.api_key_env)
    if api_key:
        os.environ["REMOTE_OPENAI_API_KEY"] = api_key  # bfcl's OpenAI client sends it with every request
    wait_for_server(args.base_url, args.wait, api_key)
    import bfcl_runtime

    bfcl_runtime.pace_readiness_check(api_key or os.environ.get("REMOTE_OPENAI_API_KEY"), args.wait)
    if args.seeds and args.temperature <= 0.01:
        print(
            f"warning: --seeds {args.seeds} at temperature {args.temperature}: runs differ only where the server's "
            "sampling does; use e.g. --temperature 0.7 for sampling runs",
            file=sys.stderr,
        )
    code = 0
    for key, overrides in runs(args):
        code = max(code, _generate_one(args, root, result_dir, key, overrides))
    return code


def _generate_one(args, root: Path, result_dir: Path, key: str, overrides: dict) -> int:
    options = resolve_options(args, Path("/nonexistent"), key, overrides)
    served = args.served_model or args.local_model_path or args.model
    register(key, served, options, args.served_model)
    folder = result_dir / model_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    sidecar = {"model": key, "served_model": served, "options": options.to_dict(), "bfcl_eval": version("bfcl-eval")}
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    argv = ["generate", "--model", key, "--test-category", categories(args.test_category), "--temperature"]
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
    failed = bfcl_abstention.server_errors(result_dir, model_dir(key))
    if failed:
        counts = ", ".join(f"{category} {len(ids)}" for category, ids in failed.items())
        print(
            f"error: {sum(map(len, failed.values()))} entries have no reply (the request failed: {counts}); "
            "rerun generate with --allow-overwrite once the server works",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_evaluate(args) -> None:
    """Score result files with bfcl-eval's own checker, then print the report."""
    root = set_project_root(args.project_root)
    result_dir = Path(args.result_dir or root / "result").resolve()
    score_dir = Path(args.score_dir or root / "score").resolve()
    import bfcl_runtime

    bfcl_runtime.tolerate_short_latency_lists()
    register_scored_models(score_dir)
    for key, overrides in runs(args):
        register(key, key, resolve_options(args, result_dir, key, overrides))
        failed = bfcl_abstention.server_errors(result_dir, model_dir(key))
        count = sum(map(len, failed.values()))
        if count > args.allow_server_errors:
            counts = ", ".join(f"{category} {len(ids)}" for category, ids in failed.items())
            raise SystemExit(
                f"{key}: {count} result entries are failed requests, not replies ({counts}): regenerate"
                f" them, or pass --allow-server-errors {count} to score them as wrong"
            )
        argv = [
            "evaluate",
            "--model",
            key,
            "--test-category",
            categories(args.test_category),
            "--result-dir",
            str(result_dir),
            "--score-dir",
            str(score_dir),
        ]
        bfcl_cli(argv + ["--partial-eval"] * args.partial_eval)
    if not args.no_report:
        args.score_dir, args.scores, args.result_dir = str(score_dir), None, str(result_dir)
        return cmd_report(args)


def _run_report(args, root: Path, key: str, label: str) -> dict:
    """One run's report from its score files (failed requests counted wrong), BFCL's CSVs and its result files."""
    score_dir = Path(args.score_dir or root / "score").resolve()
    result_dir = Path(getattr(args, "result_dir", None) or root / "result").resolve()
    failed = bfcl_abstention.server_errors(result_dir, model_dir(key))
    scores = bfcl_report.read_scores(score_dir, model_dir(key), failed)
    if not scores:
        raise SystemExit(f"no score files under {score_dir / model_dir(key)}")
    official = bfcl_report.read_official(score_dir, key)
    sidecar = result_dir / model_dir(key) / SIDECAR
    block = json.loads(sidecar.read_text())["options"]["block"] if sidecar.exists() else (args.block or "last")
    abstention = bfcl_abstention.score_results(result_dir, model_dir(key), block)
    return bfcl_report.build_report(label, scores, official, abstention if abstention["per_category"] else None)


def cmd_report(args) -> dict:
    """Print the paper's Table-2 row beside the paper's rows, BFCL's own figures, multi-turn / memory, abstention,
    and (with --seeds / --formats) every run with mean ± std and the max − min spread; write the JSON report."""
    if args.scores:
        scores = json.loads(Path(args.scores).read_text())
        report = bfcl_report.build_report(args.label or args.model, scores, {})
        out = Path(args.output or Path(args.scores).with_suffix(".report.json"))
        print(bfcl_report.render(report))
    else:
        root = Path(args.project_root or os.environ.get("BFCL_PROJECT_ROOT") or "outputs/bfcl").resolve()
        score_dir = Path(args.score_dir or root / "score").resolve()
        plan = runs(args)
        label = args.label or args.model
        if len(plan) == 1:
            report = _run_report(args, root, plan[0][0], label)
            print(bfcl_report.render(report))
            out = Path(args.output or score_dir / model_dir(plan[0][0]) / "tool_n1_report.json")
        else:
            per_run = {key.removeprefix(args.model + "/"): _run_report(args, root, key, key) for key, _ in plan}
            kind = "seeds" if getattr(args, "seeds", None) else "formats"
            report = {"label": label, **bfcl_report.aggregate(per_run, kind), "reports": per_run}
            print(bfcl_report.render(per_run[next(iter(per_run))]))
            print()
            print(bfcl_report.render_aggregate(report))
            out = Path(args.output or score_dir / f"{model_dir(args.model)}_{kind}_report.json")
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


def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        help="N runs under keys <model>/seed-1..N, request seed k; the report "
        "shows each run and mean ± std (sampling needs --temperature > 0, e.g. 0.7)",
    )
    parser.add_argument(
        "--formats",
        help="runs per prompt format, keys <model>/fmt-NAME; comma list of "
        f"{', '.join(FORMATS)}; the report shows mean ± std and the max − min spread",
    )


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
    gen.add_argument(
        "--api-key-env",
        help="environment variable holding the server's API key: sent with the "
        "readiness check and every request bfcl makes (default: none, or $REMOTE_OPENAI_API_KEY)",
    )
    gen.add_argument(
        "--served-model",
        help="model name every request carries, e.g. vllm serve's --served-model-name (default: the "
        "--local-model-path as an absolute path, else the key)",
    )
    gen.add_argument("--tokenizer-path", help="tokenizer folder for a remote server (REMOTE_OPENAI_TOKENIZER_PATH)")
    gen.add_argument(
        "--test-category",
        default=SINGLE_TURN,
        help="comma list, bfcl group, or ours: paper (13 single-turn, default), multi-turn (base, miss_func, "
        "miss_param, long_context), memory (kv, rec_sum), extended (paper + multi-turn)",
    )
    _run_flags(gen)
    gen.add_argument("--temperature", type=float, default=0.001, help="sampling temperature (default 0.001, BFCL)")
    gen.add_argument(
        "--no-request-seed",
        action="store_true",
        help="with --seeds: do not send the seed with each "
        "request (vLLM's CPU build 0.31 stops its engine on a seeded sampling request: 'CPU Generator does "
        "not use offset'); runs then differ by unseeded sampling",
    )
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
    ev.add_argument(
        "--test-category",
        default=SINGLE_TURN,
        help="comma list or group as for generate (default: paper, the 13 single-turn categories)",
    )
    _run_flags(ev)
    ev.add_argument("--result-dir", help="result folder (default <project root>/result)")
    ev.add_argument("--score-dir", help="score folder (default <project root>/score)")
    ev.add_argument("--partial-eval", action="store_true", help="score only the ids present in the result files")
    ev.add_argument("--no-report", action="store_true", help="do not print the report afterwards")
    ev.add_argument(
        "--allow-server-errors",
        type=int,
        default=0,
        help="score at most this many failed-request entries (counted wrong and shown apart); more "
        "stops the evaluation (default 0)",
    )
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
    rep.add_argument("--result-dir", help="result folder, for abstention (default <project root>/result)")
    rep.add_argument(
        "--block",
        choices=["last", "first"],
        help="block policy for abstention when a run has no saved options (default last)",
    )
    _run_flags(rep)
    rep.add_argument(
        "--output", help="report JSON (default <score dir>/<model dir>/tool_n1_report.json, or <scores>.report.json)"
    )
    rep.set_defaults(func=cmd_report)
    return parser


def run(argv: list[str] | None = None) -> int | dict:
    """The command's outcome: the report dict (``evaluate``, ``report``) or the exit status (``generate``)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    outcome = run(argv)
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
