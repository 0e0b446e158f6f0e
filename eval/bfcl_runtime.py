"""Run-time fixes to bfcl-eval 2026.3.23 that ``run_bfcl.py`` applies (no edit to site-packages).

* :func:`pace_readiness_check`: bfcl's own readiness loop (``OSSHandler.spin_up_local_server``) polls
  ``GET {base_url}/models`` with no API key, no time limit, and without pausing when the answer is not 200 (against a
  server that wants a key: about 200,000 requests in ten minutes). The ``requests`` module that loop sees is replaced
  by :class:`PacedReadiness`, which sends the key, pauses between attempts, stops at a deadline and stops at once on
  HTTP 401/403. bfcl's completion requests already send ``REMOTE_OPENAI_API_KEY`` (its OpenAI client).
* :func:`tolerate_short_latency_lists`: bfcl's summary takes ``statistics.stdev`` of the latencies, which raises on
  fewer than two (a one-item run); the helper module gets a ``statistics`` whose ``stdev`` is 0.0 there.
* :func:`write_scores_safely`: bfcl's score writer copies every failed reply into the score file, which raises on a
  reply holding a lone surrogate (possible in a result file, which is JSON) or nested some 500 levels deep; the score
  file gets such characters replaced by ``?`` and such fields replaced by a note (the result file is left as it is).

Importing this module imports ``bfcl_eval``: set ``BFCL_PROJECT_ROOT`` first.
"""

from __future__ import annotations

import json
import statistics
import time
import types

import requests
from bfcl_eval import utils as bfcl_utils
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


#: Deepest nesting of a value copied into a score file (bfcl's writer recurses twice per level).
MAX_SCORE_DEPTH = 64


def _too_deep(value) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_SCORE_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return False


def _writable(entry):
    """``entry`` as bfcl's writer can write it: a field nested deeper than :data:`MAX_SCORE_DEPTH` is replaced by a
    note, and where the JSON text is not UTF-8 encodable (lone surrogates) those characters become ``?``."""
    if isinstance(entry, dict):
        note = f"<nested deeper than {MAX_SCORE_DEPTH} levels: not copied>"
        entry = {k: note if _too_deep(v) else v for k, v in entry.items()}
    try:
        text = json.dumps(entry, ensure_ascii=False, default=str)
        text.encode("utf-8")
        return entry
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "replace").decode("utf-8"))
    except (TypeError, ValueError, RecursionError):  # bfcl's own writer reports these as before
        return entry


def write_scores_safely() -> None:
    """bfcl's score writer (``eval_runner_helper.write_list_of_dicts_to_file``) on UTF-8 encodable copies."""
    original = bfcl_utils.write_list_of_dicts_to_file

    def write(filename, data, subdir=None, use_lock=True):
        return original(filename, [_writable(entry) for entry in data], subdir, use_lock)

    eval_runner_helper.write_list_of_dicts_to_file = write
