"""Optional, off-by-default sample augmentation for xLAM samples: irrelevance (no-call) and Hammer-style masking.

Not an entry point. Both take a seeded ``random.Random`` so runs are reproducible.

* :func:`irrelevance_sample`: the original's unused ``data_augment_irrelevant`` idea, streamed: with probability
  ``rate`` per xLAM sample, emit an extra copy whose answer tools are removed from the tool list and whose answer is
  ``[]`` (skipped when no tool would remain). The original drew exactly ``int(0.15 * N)`` rows; here it is a
  per-row Bernoulli draw, so the count is ``rate * N`` on average.
* :func:`mask_names`: Hammer-style masking, the original's three steps in its order: function names -> random 5-15
  characters of ``[A-Za-z0-9_.]``, parameter names -> random 4-10 characters (tools and answer renamed consistently,
  per name: two tools of one name get the same new names for their common parameters; descriptions untouched), the
  tool order shuffled (as Hammer does), then default-value perturbation: where an answer argument equals the
  parameter's documented ``default``, both get a new value (int: ``+ randint(1, 4)``, float: ``+ random()``, str: 5
  random characters of ``[A-Za-z]``; bools and other types are left alone), the old value is replaced in that
  parameter's description (as Hammer does) and the query text is rewritten with plain, Capitalised, lower and UPPER
  string replacement (not for an empty string, which would match everywhere). Unlike the original, duplicate tool
  names are not re-padded and the global ``random`` is not used.
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


def _rename_parameters(tool: dict[str, Any], rng: random.Random, renames: dict[str, str]) -> None:
    """Give every parameter of ``tool`` (JSON-schema ``properties`` or xLAM flat map) a random name; ``renames``
    holds the names already given to tools of the same name (kept, so the answer fits every one of them)."""
    parameters = tool.get("parameters")
    if not isinstance(parameters, dict):
        return
    schema_form = isinstance(parameters.get("properties"), dict)
    params = parameters["properties"] if schema_form else parameters
    taken: set[str] = set(params) | set(renames.values())
    for old in params:
        if old not in renames:
            renames[old] = _random_name(rng, PARAM_ALPHABET, 4, 10, taken)
    renamed = {renames[old]: spec for old, spec in params.items()}
    if schema_form:
        parameters["properties"] = renamed
        if isinstance(parameters.get("required"), list):
            parameters["required"] = [renames.get(p, p) for p in parameters["required"]]
    else:
        tool["parameters"] = renamed


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
        _rename_parameters(tool, rng, param_renames.setdefault(tool["name"], {}))
    rng.shuffle(record["tools"])
    for call in record["answer"]:
        call["name"] = new_names.get(call["name"], call["name"])
        renames = param_renames.get(call["name"], {})
        call["arguments"] = {renames.get(key, key): value for key, value in call["arguments"].items()}
    _perturb_defaults(record, rng)
    record["augmentation"] = "masked"
    return record


def _parameter_specs(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool.get("parameters")
    if not isinstance(parameters, dict):
        return {}
    return parameters["properties"] if isinstance(parameters.get("properties"), dict) else parameters


def _new_value(value: Any, rng: random.Random) -> Any:
    if type(value) is int:
        return value + rng.randint(1, 4)
    if type(value) is float:
        return value + rng.random()
    return "".join(rng.choice(string.ascii_letters) for _ in range(5))


def _perturb_defaults(record: dict[str, Any], rng: random.Random) -> None:
    """Hammer's third step on an already masked copy: answer values equal to the documented default change, in the
    tool, the answer and the query text."""
    tools = {tool["name"]: tool for tool in record["tools"]}
    changed: dict[tuple[str, str], tuple[Any, Any]] = {}
    for call in record["answer"]:
        specs = _parameter_specs(tools.get(call["name"], {}))
        for key, value in call["arguments"].items():
            spec = specs.get(key)
            if (call["name"], key) in changed:
                old, new = changed[call["name"], key]
                if type(value) is type(old) and value == old:
                    call["arguments"][key] = new
                continue
            if not isinstance(spec, dict) or "default" not in spec or type(value) not in (int, float, str):
                continue
            if type(spec["default"]) is not type(value) or spec["default"] != value:
                continue
            new = _new_value(value, rng)
            changed[call["name"], key] = (value, new)
            spec["default"] = call["arguments"][key] = new
            if isinstance(spec.get("description"), str) and str(value):
                spec["description"] = spec["description"].replace(str(value), str(new))
    for turn in record.get("conversations", ()):
        if turn.get("from") != "human":
            continue
        for old, new in changed.values():
            old_text, new_text = str(old), str(new)
            if not old_text:
                continue
            text = turn["value"]
            for form in (str, str.capitalize, str.lower, str.upper):
                text = text.replace(form(old_text), form(new_text))
            turn["value"] = text
