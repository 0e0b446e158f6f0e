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
