"""Shared test set-up: stage folders on sys.path, the shared real-data fixtures, GPU skipping."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"

# Stage folders are plain script folders (no __init__.py); their modules import each other by name.
# Never put REPO itself on sys.path: our `verl/` folder would shadow the installed verl package.
for stage in ("data_process", "eval", "scripts"):
    path = str(REPO / stage)
    if path not in sys.path:
        sys.path.insert(0, path)


def require_shared_fixtures(*parts: str) -> Path:
    """Path under ``../shared/fixtures``; skips where the folder is absent (a user's clone), fails under CI=true."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.exists():
        message = f"real-data fixtures not found at {path} (they live beside the project checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; under CI=true they are required")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_fixtures() -> Path:
    return require_shared_fixtures()


#: Marker → the package that marks its environment (scripts/test.sh runs each marker in its own venv).
ENV_MARKERS = {"rl_env": "verl", "sft_env": "llamafactory", "eval_env": "bfcl_eval", "vllm_env": "vllm"}


def _installed(package: str) -> bool:
    # our own verl/ folder can look like a namespace package (origin None); only a real install counts
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.origin is not None


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_runtest_setup(item):
    for marker, package in ENV_MARKERS.items():
        if marker in item.keywords and not _installed(package):
            reason = f"{marker} test needs `{package}`; run it in its environment (bash scripts/test.sh)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason + "; under CI=true a missing environment is a failure")
            pytest.skip(reason)
    if "gpu" in item.keywords and not _cuda_available():
        pytest.skip("needs a CUDA device; none visible")
