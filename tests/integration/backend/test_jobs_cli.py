"""``renkei jobs list | retry | cancel`` and ``renkei worker``, on both runners."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from procrastinate import jobs as pjobs
from typer.testing import CliRunner

from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.job_store import SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.jobs.distributed import ProcrastinateJobs
from renkei.cli import app as cli_app
from tests.support.databases import database_url

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


async def _queue_two_and_fail_one(url: str) -> None:
    """Two syncs queued; the first then failed for good, as after its last attempt."""
    engine = make_engine(url)
    await migrate(engine)
    jobs = ProcrastinateJobs(url) if engine.dialect.name == "postgresql" else None
    sessions = make_sessions(engine, jobs)
    for account in ("a", "b"):
        async with SqlUnitOfWork(sessions) as uow:
            await uow.repo.enqueue_job(
                "sync_account", {"account_id": account}, lock_key=f"account:{account}", run_at=NOW
            )
            await uow.commit()
    if jobs is not None:
        await jobs.open()
        manager = jobs.app.job_manager
        job = await manager.fetch_job(["renkei"], await manager.register_worker())
        assert job is not None
        await manager.finish_job(job, status=pjobs.Status.FAILED, delete_job=False)
        await jobs.close()
    else:
        store = SqlJobStore(sessions)
        claimed = await store.claim(NOW)
        assert claimed is not None
        await store.retry(claimed.id, NOW, "HTTP 500", give_up=True)
    await engine.dispose()


def test_an_operator_lists_retries_and_cancels_jobs(database: str, tmp_path: Path) -> None:
    asyncio.run(_queue_two_and_fail_one(database))
    env = {"RENKEI_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database}
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output.strip()

    listed = cli("jobs", "list").splitlines()
    assert len(listed) == 2
    assert "sync_account  queued  lock=account:b" in listed[0]
    assert "sync_account  failed  lock=account:a" in listed[1]
    failed_id, queued_id = listed[1].split()[0], listed[0].split()[0]

    assert "no failed job" in cli("jobs", "retry", queued_id, code=1)
    assert "queued again" in cli("jobs", "retry", failed_id)
    assert cli("jobs", "list", "--status", "failed") == ""
    assert "cancelled" in cli("jobs", "cancel", queued_id)
    [cancelled] = cli("jobs", "list", "--status", "cancelled").splitlines()
    assert cancelled.startswith(f"{queued_id}  sync_account  cancelled")
    [queued] = cli("jobs", "list", "--status", "queued").splitlines()
    assert queued.startswith(f"{failed_id}  sync_account  queued")
    assert "status is one of" in cli("jobs", "list", "--status", "stuck", code=2)


def test_a_worker_needs_postgresql(tmp_path: Path) -> None:
    env = {
        "RENKEI_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'renkei.sqlite3'}",
    }
    result = CliRunner().invoke(cli_app, ["worker"], env=env)
    assert result.exit_code == 2
    assert "renkei worker runs background work on PostgreSQL" in result.output


def test_a_fresh_embedded_database_lists_no_jobs_and_no_warning(tmp_path: Path) -> None:
    """The command as an operator runs it: no traceback, no library's deprecation notice."""
    result = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "jobs", "list"],
        env={**os.environ, "RENKEI_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr.split("Exception in thread")[0], result.stderr
    assert "deprecated" not in result.stderr, result.stderr
