"""The import contracts of ``pyproject.toml`` hold, and each one bites.

``lint-imports`` runs in scripts/test as well; here a broken contract also fails the
pytest run. The second test adds one forbidden import per contract to a copy of the
source tree and checks that import-linter names each of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backend", "connectors", "statemachine", "bot", "sandbox", "renkei", "bench")
LINT = (
    "import sys\n"
    "from importlinter.cli import lint_imports\n"
    "sys.exit(lint_imports(no_cache=True, no_logo=True))\n"
)


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the packages found under ``root``, with its pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (package the probe module is added to, what it imports, the contract's words for it)
PROBES = [
    ("bot.slack", "backend.db.tables", "bot is not allowed to import backend.db"),
    ("bot", "backend.service.context", "bot is not allowed to import backend.service"),
    ("statemachine", "renkei.settings", "statemachine is not allowed to import renkei"),
    ("sandbox", "backend.domain.model", "sandbox is not allowed to import backend"),
    ("backend.domain", "pydantic", "backend.domain is not allowed to import pydantic"),
    ("backend.service", "backend.api", "backend.service is not allowed to import backend.api"),
    ("backend.api", "backend.db.tables", "backend.api is not allowed to import backend.db"),
    ("connectors", "bot.conversations", "connectors is not allowed to import bot"),
]


def test_each_contract_refuses_a_forbidden_import(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package, imported, _ in PROBES:
        probe = tmp_path / package.replace(".", "/") / "probe.py"
        probe.write_text(f'"""A forbidden import."""\n\nimport {imported}\n')

    result = lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept" in result.stdout
    for package, _, message in PROBES:
        assert message in result.stdout, f"{package}.probe: {message!r} not reported"
