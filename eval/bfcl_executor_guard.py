"""The only door to BFCL's multi-turn executor: each call string is checked against the entry's own API classes.

bfcl-eval's ``execute_multi_turn_func_call`` (``multi_turn_utils``) prefixes each method name with an instance name
and passes the string to ``eval`` in a module whose globals also hold every earlier entry's instances. Its own
safety check is a deny-list of eight names. :func:`install` replaces the function, in the two modules that call it
(``base_handler`` for generation, ``multi_turn_checker`` for evaluation), with :func:`guarded_execute`, which
hands on only strings that pass :func:`tool_n1.bfcl_decode.check_execute_string` for the names of the entry's
``involved_classes`` (:func:`allowed_methods`: the functions listed in the class's BFCL function document, less any
name of a builtin or of the executor module's globals, where a name that is not a method would resolve). The class
modules are not imported for this (``memory_vector`` loads an embedding model when imported). A refused string is
not executed; its result is ``"Error during execution: refused: <reason>"`` (the form BFCL uses for a call that
raised), so the model sees an error and the checker scores the state it finds.

Importing this module imports ``bfcl_eval``: set ``BFCL_PROJECT_ROOT`` first (``run_bfcl.py`` does).
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Iterable
from functools import cache

from bfcl_eval.constants.eval_config import MULTI_TURN_FUNC_DOC_PATH
from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING, MULTI_TURN_FUNC_DOC_FILE_MAPPING
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker, multi_turn_utils
from bfcl_eval.model_handler import base_handler

from tool_n1 import bfcl_decode

_original_execute = multi_turn_utils.execute_multi_turn_func_call
_lock = threading.Lock()
REFUSED_PREFIX = "Error during execution: refused: "


@cache
def class_methods(class_name: str) -> frozenset[str]:
    """Functions of one BFCL API class: the names in its function document (what the entry's tool list shows), less
    names that would resolve in the executor's module without an instance (its globals, builtins)."""
    doc = MULTI_TURN_FUNC_DOC_PATH / MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
    documented = {json.loads(line)["name"] for line in doc.read_text(encoding="utf-8").splitlines() if line.strip()}
    return frozenset(n for n in documented if not n.startswith("_") and n not in vars(multi_turn_utils)) - set(
        dir(builtins)
    )


def allowed_methods(involved_classes: Iterable[str]) -> frozenset[str]:
    """Callable names for an entry; an unknown class contributes nothing."""
    names: set[str] = set()
    for class_name in involved_classes:
        if class_name in CLASS_FILE_PATH_MAPPING and class_name in MULTI_TURN_FUNC_DOC_FILE_MAPPING:
            names |= class_methods(class_name)
    return frozenset(names)


def all_methods() -> frozenset[str]:
    """Every BFCL API class's functions (what a decoder that does not know the entry may let through)."""
    return allowed_methods(CLASS_FILE_PATH_MAPPING)


def guarded_execute(
    func_call_list: list[str],
    initial_config: dict,
    involved_classes: list,
    model_name: str,
    test_entry_id: str,
    long_context: bool = False,
    is_evaL_run: bool = False,
) -> tuple[list[str], dict]:
    """``execute_multi_turn_func_call`` that runs only the strings safe for ``involved_classes`` (same signature)."""
    allowed = allowed_methods(involved_classes)
    results: list[str | None] = []
    passed: list[str] = []
    for text in func_call_list:
        try:
            bfcl_decode.check_execute_string(text, allowed)
        except bfcl_decode.DecodeError as exc:
            results.append(REFUSED_PREFIX + str(exc))
            continue
        results.append(None)
        passed.append(text)
    executed, instances = _original_execute(
        passed, initial_config, involved_classes, model_name, test_entry_id, long_context, is_evaL_run
    )
    answers = iter(executed)
    return [next(answers) if r is None else r for r in results], instances


def install() -> None:
    """Route bfcl-eval's generation and evaluation through :func:`guarded_execute` (idempotent)."""
    with _lock:
        for module in (base_handler, multi_turn_checker, multi_turn_utils):
            module.execute_multi_turn_func_call = guarded_execute


def installed() -> bool:
    """Whether every caller of the executor goes through the guard."""
    return all(m.execute_multi_turn_func_call is guarded_execute for m in (base_handler, multi_turn_checker))
