"""Unified JSONL -> verl train/test parquet: the seed's entry point; the code is data_process/to_verl_parquet.py.

Command line:

    cd verl/examples/data_preprocess && python toolcall_preprocess.py \\
        --input ../../../data/unified/unified.jsonl --local_dir ../../../data/verl [--mode improved|faithful]

Run ``python toolcall_preprocess.py --help`` for every flag; data_process/README.md explains them.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "data_process"))

import to_verl_parquet  # noqa: E402

if __name__ == "__main__":
    sys.exit(to_verl_parquet.main())
