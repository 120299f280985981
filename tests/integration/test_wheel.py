"""The wheel built from the repository ships every file renkei reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backend/", "bot/", "connectors/", "i18n/", "renkei/", "sandbox/", "statemachine/")


def test_the_wheel_holds_every_packaged_file(tmp_path: Path) -> None:
    # Built from a clean copy: a build/ folder left in the checkout would lend it stale files.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
    )
    (wheel,) = tmp_path.glob("renkei-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    missing = sorted(name for name in tracked if name not in shipped)
    # Message catalogs, templates, static files and migrations alike: a missing one fails
    # only when the installed program first reaches for it.
    assert missing == []
