"""Shared set-up for the BFCL tests: one ``BFCL_PROJECT_ROOT`` per test process (the unsatisfiable ids and the
Table-2 counts live in ``eval/bfcl_synthetic.py``, which the benchmark uses too).

``bfcl_eval`` fixes its project root when first imported, so every BFCL test uses the same temporary root and its
own result/score folders below it. Nothing here imports ``bfcl_eval`` at module level (the file is collected in
every environment).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_ROOT: Path | None = None


def bfcl_root() -> Path:
    """The process-wide ``BFCL_PROJECT_ROOT`` (a temporary folder), set before ``bfcl_eval`` is imported."""
    global _ROOT
    if _ROOT is None:
        loaded = sys.modules.get("bfcl_eval.constants.eval_config")
        if loaded is not None:
            _ROOT = Path(loaded.PROJECT_ROOT).resolve()
        else:
            _ROOT = Path(tempfile.mkdtemp(prefix="bfcl-root-")).resolve()
            atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
            os.environ["BFCL_PROJECT_ROOT"] = str(_ROOT)
    return _ROOT


def evaluate_argv(root: Path, key: str, work: Path, categories: str) -> list[str]:
    """``run_bfcl.py evaluate`` arguments: a partial evaluation of ``categories``, outputs under ``work``."""
    return [
        "evaluate",
        "--project-root",
        str(root),
        "--model",
        key,
        "--partial-eval",
        "--result-dir",
        str(work / "result"),
        "--score-dir",
        str(work / "score"),
        "--test-category",
        categories,
    ]
