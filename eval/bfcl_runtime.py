"""Run-time fixes to bfcl-eval 2026.3.23 that ``run_bfcl.py`` applies (no edit to site-packages).

* :func:`pace_readiness_check`: bfcl's own readiness loop (``OSSHandler.spin_up_local_server``) polls
  ``GET {base_url}/models`` with no API key, no time limit, and without pausing when the answer is not 200 (against a
  server that wants a key: about 200,000 requests in ten minutes). The ``requests`` module that loop sees is replaced
  by :class:`PacedReadiness`, which sends the key, pauses between attempts, stops at a deadline and stops at once on
  HTTP 401/403. bfcl's completion requests already send ``REMOTE_OPENAI_API_KEY`` (its OpenAI client).
* :func:`tolerate_short_latency_lists`: bfcl's summary takes ``statistics.stdev`` of the latencies, which raises on
  fewer than two (a one-item run); the helper module gets a ``statistics`` whose ``stdev`` is 0.0 there.

Importing this module imports ``bfcl_eval``: set ``BFCL_PROJECT_ROOT`` first.
"""

from __future__ import annotations

import statistics
import time
import types

import requests
from bfcl_eval.eval_checker import eval_runner_helper
from bfcl_eval.model_handler.local_inference import base_oss_handler


class ServerNotReady(RuntimeError):
    """bfcl's readiness check gave up (deadline passed or the key was refused)."""


class PacedReadiness:
    """Stands in for ``requests`` inside bfcl's ``base_oss_handler`` (used there only by the readiness loop)."""

    exceptions = requests.exceptions

    def __init__(self, api_key: str | None, timeout: float, pause: float = 2.0):
        self.api_key, self.timeout, self.pause = api_key, timeout, pause
        self.deadline: float | None = None  # set by the first attempt (bfcl loads the tokenizer before it polls)
        self.attempts = 0

    def get(self, url: str, **kwargs):
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout
        if time.monotonic() > self.deadline:
            raise ServerNotReady(f"{url}: not ready before the deadline ({self.attempts} attempts)")
        if self.attempts:
            time.sleep(self.pause)
        self.attempts += 1
        headers = dict(kwargs.pop("headers", None) or {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        response = requests.get(url, headers=headers, timeout=10, **kwargs)
        if response.status_code in (401, 403):
            raise ServerNotReady(f"{url}: HTTP {response.status_code} (the server refused the API key)")
        return response


def pace_readiness_check(api_key: str | None, timeout: float) -> PacedReadiness:
    """Route bfcl's readiness loop through a :class:`PacedReadiness` (returned, for inspection)."""
    shim = PacedReadiness(api_key, timeout)
    base_oss_handler.requests = shim
    return shim


def tolerate_short_latency_lists() -> None:
    def stdev(data, xbar=None):
        data = list(data)
        return statistics.stdev(data, xbar) if len(data) > 1 else 0.0

    patched = types.SimpleNamespace(**{name: getattr(statistics, name) for name in ("mean", "variance", "median")})
    patched.stdev = stdev
    eval_runner_helper.statistics = patched
