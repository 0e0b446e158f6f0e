"""Optional, off-by-default sample augmentation for xLAM samples: irrelevance (no-call) and Hammer-style masking.

Not an entry point. Both take a seeded ``random.Random`` so runs are reproducible.

* :func:`irrelevance_sample`: the original's unused ``data_augment_irrelevant`` idea, streamed: with probability
  ``rate`` per xLAM sample, emit an extra copy whose answer tools are removed from the tool list and whose answer is
  ``[]`` (skipped when no tool would remain). The original drew exactly ``int(0.15 * N)`` rows; here it is a
  per-row Bernoulli draw, so the count is ``rate * N`` on average.
* :func:`mask_names`: Hammer-style name masking (function names -> random 5-15 characters of ``[A-Za-z0-9_.]``,
  parameter names -> random 4-10 characters), applied consistently to the tools and the answer. The original's third
  step (perturbing default values and rewriting the query text) is not implemented.
"""

from __future__ import annotations

import copy
import random
import string
from typing import Any

NAME_ALPHABET = string.ascii_letters + string.digits + "_."
PARAM_ALPHABET = string.ascii_letters + string.digits + "_"


def irrelevance_sample(record: dict[str, Any], rng: random.Random, rate: float) -> dict[str, Any] | None:
    if rate <= 0 or rng.random() >= rate:
        return None
    answer_names = {call["name"] for call in record["answer"]}
    tools = [tool for tool in record["tools"] if tool["name"] not in answer_names]
    if not tools:
        return None
    return {**record, "tools": tools, "answer": [], "augmentation": "irrelevance"}


def _random_name(rng: random.Random, alphabet: str, low: int, high: int, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))
        if name not in taken:
            taken.add(name)
            return name


def _rename_parameters(tool: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """Give every parameter of ``tool`` (JSON-schema ``properties`` or xLAM flat map) a random name."""
    parameters = tool.get("parameters")
    if not isinstance(parameters, dict):
        return {}
    schema_form = isinstance(parameters.get("properties"), dict)
    params = parameters["properties"] if schema_form else parameters
    taken: set[str] = set(params)
    renames = {old: _random_name(rng, PARAM_ALPHABET, 4, 10, taken) for old in params}
    renamed = {renames[old]: spec for old, spec in params.items()}
    if schema_form:
        parameters["properties"] = renamed
        if isinstance(parameters.get("required"), list):
            parameters["required"] = [renames.get(p, p) for p in parameters["required"]]
    else:
        tool["parameters"] = renamed
    return renames


def mask_names(record: dict[str, Any], rng: random.Random, rate: float) -> dict[str, Any] | None:
    """A masked copy of ``record`` with probability ``rate`` (else ``None``)."""
    if rate <= 0 or rng.random() >= rate:
        return None
    record = copy.deepcopy(record)
    taken: set[str] = set()
    new_names: dict[str, str] = {}
    param_renames: dict[str, dict[str, str]] = {}
    for tool in record["tools"]:
        if tool["name"] not in new_names:
            new_names[tool["name"]] = _random_name(rng, NAME_ALPHABET, 5, 15, taken)
        tool["name"] = new_names[tool["name"]]
        param_renames.setdefault(tool["name"], _rename_parameters(tool, rng))
    for call in record["answer"]:
        call["name"] = new_names.get(call["name"], call["name"])
        renames = param_renames.get(call["name"], {})
        call["arguments"] = {renames.get(key, key): value for key, value in call["arguments"].items()}
    record["augmentation"] = "masked"
    return record
