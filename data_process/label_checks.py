"""Label-noise checks on ground-truth calls (improved mode; not an entry point, ``toolace.py`` / ``xlam.py`` use it).

Each check is a counted rejection reason with its own switch (``data_process.py --no-check-...``):

* ``argument_type_mismatch`` (``--check-argument-types``): an argument's JSON type differs from its parameter's
  declared type (a ``string`` parameter holding a float cut at a comma, an ``integer`` given as ``"5"``). Only types
  this module knows are checked (JSON-schema names and xLAM's Python-ish ones); ``null`` values are not checked;
  a tool whose unknown type was normalised to ``string`` can reject a correct label (rare: ``Callable``, ``Union``).
* ``required_argument_missing`` (``--check-required``): a parameter the schema lists as required has no argument.
* ``calls_disagree_with_tool_results`` (``--check-tool-results``, ToolACE): the next turn holds tool results, and
  the tools that answered are not the tools called.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

_OPTIONAL = re.compile(r",?\s*optional\s*$", re.IGNORECASE)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_ALIASES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array"}
_ALIASES.update({"tuple": "array", "dict": "object", **{name: name for name in _JSON_TYPES}})


def _json_type(type_text: Any) -> str | None:
    """``"int, optional"`` -> ``"integer"``, ``"List[str]"`` -> ``"array"``; ``None`` for a type not known here."""
    return _known_type(type_text) if isinstance(type_text, str) else None


@functools.lru_cache(maxsize=4096)
def _known_type(type_text: str) -> str | None:
    base = _OPTIONAL.sub("", type_text.strip()).split("[", 1)[0].strip().lower()
    return _ALIASES.get(base)


def _type_matches(value: Any, type_spec: Any) -> bool:
    names = type_spec if isinstance(type_spec, list) else [type_spec]
    kinds = [_json_type(name) for name in names]
    if value is None or None in kinds or "null" in names:
        return True  # a type this module does not know, or nullable
    for kind in kinds:
        if isinstance(value, _JSON_TYPES[kind]) and not (isinstance(value, bool) and kind in ("integer", "number")):
            return True
    return False


def _schema(tool: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The tool's parameter specs and required names (a JSON schema or xLAM's flat map)."""
    parameters = tool.get("parameters")
    if not isinstance(parameters, dict):
        return {}, []
    if isinstance(parameters.get("properties"), dict):
        required = parameters.get("required")
        return parameters["properties"], required if isinstance(required, list) else []
    return parameters, []  # flat map: optionality is only in the type text, not checked here


def call_problem(calls: list[dict[str, Any]], tools: list[dict[str, Any]], options) -> tuple[str, str] | None:
    """The first label problem of ``calls`` against ``tools`` as ``(reason, detail)``, or ``None``."""
    by_name = {tool["name"]: tool for tool in tools}
    for call in calls:
        tool = by_name.get(call["name"])
        arguments = call.get("arguments")
        if tool is None or not isinstance(arguments, dict):
            continue
        specs, required = _schema(tool)
        if options.check_required:
            missing = [name for name in required if isinstance(name, str) and name not in arguments]
            if missing:
                return "required_argument_missing", f"{call['name']}: no argument for required {missing}"
        if options.check_argument_types:
            for key, value in arguments.items():
                spec = specs.get(key)
                if isinstance(spec, dict) and "type" in spec and not _type_matches(value, spec["type"]):
                    detail = f"{call['name']}: {key}={json.dumps(value)[:80]} is not of type {spec['type']!r}"
                    return "argument_type_mismatch", detail
    return None


def result_names(observation: str) -> set[str] | None:
    """The tool names in a ToolACE result turn ``[{"name": ..., "results": ...}]``; ``None`` if it is not one."""
    try:
        results = json.loads(observation)
    except (ValueError, RecursionError):
        return None
    if not isinstance(results, list) or not results:
        return None
    if not all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in results):
        return None
    return {item["name"] for item in results}
