"""The repository layout rules that keep the installed verl (and its `scripts`/`tests` packages) importable."""

import subprocess
import sys

from tests.conftest import REPO

STAGE_FOLDERS = ["verl", "scripts", "data_process", "eval", "LLaMA-Factory"]


def test_stage_folders_have_no_init_py():
    for folder in STAGE_FOLDERS:
        assert (REPO / folder).is_dir(), folder
        offenders = sorted(str(p.relative_to(REPO)) for p in (REPO / folder).rglob("__init__.py"))
        assert offenders == [], f"{folder}/ must not be a package (it would shadow an installed one): {offenders}"


def test_tests_is_our_package():
    assert (REPO / "tests" / "__init__.py").is_file()
    import tests

    assert tests.__file__ is not None and tests.__file__.startswith(str(REPO))


def test_core_imports_no_heavy_library():
    code = (
        "import sys, tool_n1.reward, tool_n1.parsing, tool_n1.prompts, tool_n1.schema, tool_n1.call_strings\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'transformers', 'pyarrow', 'verl') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO / "src")
    assert out.stdout.strip() == ""


def _project_python_files():
    tracked = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, check=True, cwd=REPO)
    return [REPO / name for name in tracked.stdout.split() if (REPO / name).is_file()]


def test_every_command_line_refuses_abbreviations_and_has_main_argv_returning_int():
    import ast

    abbreviating, no_main = [], []
    for path in _project_python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                plain = name == "ArgumentParser" and not (
                    isinstance(node.func, ast.Name) and path.name != "cli.py"  # tool_n1.cli's subclass refuses them
                )
                if (plain or name == "add_parser") and not any(
                    k.arg == "allow_abbrev" and getattr(k.value, "value", True) is False for k in node.keywords
                ):
                    abbreviating.append(f"{path.relative_to(REPO)}:{node.lineno}")
        runs_as_script = (
            any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
            and path.parts[-2] != "tests"
        )
        if runs_as_script:
            main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
            ok = (
                main is not None
                and [a.arg for a in main.args.args][:1] == ["argv"]
                and main.returns is not None
                and ast.unparse(main.returns) == "int"
            )
            if not ok:
                no_main.append(str(path.relative_to(REPO)))
    assert abbreviating == [], f"argparse without allow_abbrev=False: {abbreviating}"
    assert no_main == [], f"entry points without `def main(argv: list[str] | None = None) -> int`: {no_main}"


def test_no_script_reaches_into_a_sibling_stage_folder_or_tests_through_sys_path():
    import re

    reach = re.compile(r"sys\.path\.(insert|append)\([^)]*(data_process|eval|LLaMA-Factory|scripts|tests|verl)\b")
    offenders = [
        str(path.relative_to(REPO))
        for path in _project_python_files()
        if path.parts[-2] != "tests" and reach.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
