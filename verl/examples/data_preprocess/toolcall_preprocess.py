"""Unified JSONL -> verl train/test parquet, at the path the original project used; the code is
data_process/to_verl_parquet.py, which this runs with the same arguments.

Command line:

    cd verl/examples/data_preprocess && python toolcall_preprocess.py \\
        --input ../../../data/unified/unified.jsonl --local_dir ../../../data/verl [--mode improved|faithful]

Run ``python toolcall_preprocess.py --help`` for every flag; data_process/README.md explains them.
"""

import os
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "data_process" / "to_verl_parquet.py"


def main(argv: list[str] | None = None) -> int:
    """Replace this process with ``python data_process/to_verl_parquet.py ARGV`` (its exit status is ours)."""
    args = sys.argv[1:] if argv is None else argv
    os.execv(sys.executable, [sys.executable, str(SCRIPT), *args])
    return 1  # not reached: execv only returns by raising


if __name__ == "__main__":
    sys.exit(main())
