"""What every browser test starts from: Debian's chromium, and renkei on SQLite.

The page is the same whatever database sits behind the API, so the browser tests run
on SQLite only; the API's own tests cover PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from tests.e2e.conftest import Renkei, running_renkei

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium; a missing browser fails loudly rather than skipping the journey."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: scripts/test installs it (apt-get)")
    return found


@asynccontextmanager
async def chromium_page(**context: Any) -> AsyncIterator[Page]:
    """A tab of a fresh browser in Japanese; ``context`` as Playwright's ``new_context``."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            yield await (await browser.new_context(locale="ja-JP", **context)).new_page()
        finally:
            await browser.close()


@asynccontextmanager
async def renkei_on_sqlite(tmp_path: Path) -> AsyncIterator[Renkei]:
    url = f"sqlite+aiosqlite:///{tmp_path}/renkei.sqlite3"
    async with running_renkei(url, tmp_path / "data") as client:
        yield client
