"""Shared set-up for the BFCL tests: one ``BFCL_PROJECT_ROOT`` per test process, expected exclusions, Table-2 counts.

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

#: Possible answers no output can pass (round trip), with the reason. evaluation.md §2.3 lists the first 7; the
#: simple_java ones were hidden there behind its renderer's 23 Java-literal failures (found here, see report).
EXCLUSIONS = {
    "parallel_multiple_12": "data bug: a parameter (e.g. permeability) attached to the wrong function",
    "parallel_multiple_26": "data bug: a parameter attached to the wrong function",
    "live_simple_106-63-0": "a required parameter's acceptable-value list is [] (nothing can match)",
    "live_simple_112-68-0": "a required parameter's acceptable-value list is [] (nothing can match)",
    "live_multiple_507-149-4": "a required parameter's acceptable-value list is [] (nothing can match)",
    "live_multiple_964-207-0": "a required parameter's acceptable-value list is [] (nothing can match)",
    "live_multiple_862-181-3": "ground truth uses a parameter absent from the function doc",
}
SECTION_2_3 = frozenset(EXCLUSIONS)
EXTRA_JAVA_EXCLUSIONS = {
    "simple_java_36": "ArrayList<any>: the converter turns every element into a string; the answer holds 42 and true",
    "simple_java_65": "ArrayList<any>: the converter turns every element into a string; the answer holds true",
    "simple_java_64": "data bug: dict value 'epoch_millis' is not an option list, so it is compared per character",
}
EXCLUSIONS.update(EXTRA_JAVA_EXCLUSIONS)

#: Correct counts that give the Tool-N1 rows of Table 2 (Simple split so that mean(py, java, js) = the aggregate).
TABLE2_COUNTS = {
    "Tool-N1-7B": {"simple_python": 308, "simple_java": 80, "simple_javascript": 37, "multiple": 190,
                   "parallel": 189, "parallel_multiple": 181, "live_simple": 212, "live_multiple": 847,
                   "live_parallel": 10, "live_parallel_multiple": 17},
    "Tool-N1-14B": {"simple_python": 323, "simple_java": 81, "simple_javascript": 40, "multiple": 192,
                    "parallel": 187, "parallel_multiple": 184, "live_simple": 217, "live_multiple": 854,
                    "live_parallel": 13, "live_parallel_multiple": 16},
}  # fmt: skip


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
