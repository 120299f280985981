"""/readyz and /metrics: what an operator's tools read, on both runners."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Renkei
from tests.e2e.test_slack import Slack
from tests.e2e.test_slack import slack as slack_fixture  # noqa: F401  (a fixture, used by name)


async def test_ready_and_metrics_read_the_shared_queue(renkei: Renkei) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "database": True, "queue": True}
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    # The demo's first syncs, done by the runner this database uses.
    done = [
        line for line in lines if line.startswith('renkei_jobs{status="done",task="sync_account"}')
    ]
    assert done and float(done[0].rsplit(" ", 1)[1]) >= 6, lines
    assert any(line.startswith("renkei_outbox_backlog ") for line in lines)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by Prometheus' own parser, by name and labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_report_job_latency_syncs_issuer_health_and_slack_acks(
    slack_fixture: Slack,  # noqa: F811  (the fixture imported above)
) -> None:
    slack = slack_fixture
    renkei = slack.renkei
    await renkei.wait_all_synced()  # the demo's first syncs: one per account
    helped = await slack.command("help")
    assert helped.status_code == 200
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    samples = _samples(scraped.text)

    def value(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in samples, (key, sorted(k for k in samples if k[0] == name))
        return samples[key]

    # Job latency per task: every sync that ran was waited for and timed.
    synced = value("renkei_job_run_seconds_count", task="sync_account")
    assert synced >= 6
    assert value("renkei_job_wait_seconds_count", task="sync_account") >= synced
    assert value("renkei_job_run_seconds_sum", task="sync_account") > 0
    assert value("renkei_job_run_seconds_bucket", task="sync_account", le="+Inf") == synced
    # Sync outcomes, lag and health per issuer: the demo's syncs all went through.
    for issuer in ("amex", "jcb"):
        assert value("renkei_sync_outcomes", issuer=issuer, outcome="success") >= 1
        failed = ("renkei_sync_outcomes", (("issuer", issuer), ("outcome", "issuer_failure")))
        assert failed not in samples
        assert 0 <= value("renkei_sync_lag_seconds", issuer=issuer) < 600
        assert value("renkei_issuer_health", issuer=issuer) == 0  # healthy
    # The Slack request's ack, timed where the process acked it.
    assert value("renkei_slack_ack_seconds_count") >= 1
    assert 0 < value("renkei_slack_ack_seconds_sum") < 10
