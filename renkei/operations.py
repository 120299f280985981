"""What an operator's tools ask a running renkei: ``/readyz`` and ``/metrics``.

``/healthz`` (the process answers and its database does) stays beside the API; these
two add the queue: ready means the database and the job queue are reachable.

Most metrics are read from the shared database at each scrape, so every process reports
the same figures whichever one Prometheus asks: jobs per task and status, job latency on
PostgreSQL (from Procrastinate's event rows, so any worker's jobs count), sync outcomes,
lag and health per issuer, the outbox backlog. Two are observed in the process itself:
Slack's ack latency (where the process acked) and, on SQLite, job latency (the one
process running every job is the one asked).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.db import sync_metrics
from backend.db.engine import ping
from backend.db.job_store import SqlJobStore
from backend.domain.issuer_health import HealthState
from backend.jobs.distributed import ProcrastinateJobs
from backend.service import issuer_health

if TYPE_CHECKING:
    from renkei.bootstrap import Runtime


LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)
HEALTH_LEVELS = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.DOWN: 2}

# Observed in this process (registered into each scrape's registry).
SLACK_ACK = Histogram(
    "renkei_slack_ack_seconds",
    "Time from a Slack request's arrival to its acknowledgement, in this process",
    buckets=ACK_BUCKETS,
    registry=None,
)
_WAIT = ("renkei_job_wait_seconds", "Time from a job being due to its start, per task")
_RUN = ("renkei_job_run_seconds", "Time a job ran, per task")
JOB_WAIT = Histogram(
    *_WAIT,
    ["task"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
JOB_RUN = Histogram(
    *_RUN,
    ["task"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)


def observe_job(task: str, wait: float, run: float) -> None:
    """The in-process runner's observer (SQLite: every job runs in this process)."""
    JOB_WAIT.labels(task).observe(wait)
    JOB_RUN.labels(task).observe(run)


def observe_slack_ack(seconds: float) -> None:
    SLACK_ACK.observe(seconds)


def _histogram(name: str, help_text: str, samples: dict[str, list[float]]) -> Metric:
    family = HistogramMetricFamily(name, help_text, labels=["task"])
    for task, values in sorted(samples.items()):
        buckets = [(str(b), float(sum(v <= b for v in values))) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([task], buckets, sum_value=sum(values))
    return family


class _Snapshot(Collector):
    """Metrics read just before the scrape (the reads are async; collect() is not)."""

    def __init__(
        self,
        depths: dict[tuple[str, str], int],
        backlog: int,
        outcomes: dict[tuple[str, str], int],
        lags: dict[str, float],
        health: dict[str, HealthState],
        latencies: list[tuple[str, float, float | None]] | None,
    ) -> None:
        self._depths = depths
        self._backlog = backlog
        self._outcomes = outcomes
        self._lags = lags
        self._health = health
        self._latencies = latencies

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "renkei_jobs", "Background jobs by task and status", labels=["task", "status"]
        )
        for (task, status), count in sorted(self._depths.items()):
            jobs.add_metric([task, status], count)
        yield jobs
        yield GaugeMetricFamily(
            "renkei_outbox_backlog", "Webhook deliveries not made yet", value=self._backlog
        )
        # A gauge, not a counter: the rows are the issuer health window, pruned as it moves.
        outcomes = GaugeMetricFamily(
            "renkei_sync_outcomes",
            "Sync runs in the issuer health window, per issuer and outcome",
            labels=["issuer", "outcome"],
        )
        for (issuer, kind), count in sorted(self._outcomes.items()):
            outcomes.add_metric([issuer, kind], count)
        yield outcomes
        lag = GaugeMetricFamily(
            "renkei_sync_lag_seconds",
            "Seconds since the live account synced longest ago, per issuer",
            labels=["issuer"],
        )
        for issuer, seconds in sorted(self._lags.items()):
            lag.add_metric([issuer], seconds)
        yield lag
        health = GaugeMetricFamily(
            "renkei_issuer_health",
            "Issuer health: 0 healthy, 1 degraded, 2 down",
            labels=["issuer"],
        )
        for issuer, state in sorted(self._health.items()):
            health.add_metric([issuer], HEALTH_LEVELS[state])
        yield health
        if self._latencies is not None:
            waits: dict[str, list[float]] = {}
            runs: dict[str, list[float]] = {}
            for task, wait, run in self._latencies:
                waits.setdefault(task, []).append(wait)
                if run is not None:
                    runs.setdefault(task, []).append(run)
            yield _histogram(*_WAIT, waits)
            yield _histogram(*_RUN, runs)


def install_operations(app: FastAPI, runtime: Runtime) -> None:
    store = SqlJobStore(runtime.sessions)

    @app.get(
        "/readyz",
        tags=["health"],
        summary="200 once the database and the job queue answer",
        responses={503: {"description": "The database or the job queue does not answer."}},
    )
    async def readyz() -> JSONResponse:
        database = await ping(runtime.engine)
        runner = runtime.runner
        queue = await runner.reachable() if isinstance(runner, ProcrastinateJobs) else database
        ready = database and queue
        body = {"status": "ok" if ready else "unavailable", "database": database, "queue": queue}
        return JSONResponse(body, 200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        runner = runtime.runner
        shared = runner if isinstance(runner, ProcrastinateJobs) else store
        depths = await shared.depths()
        health = {str(h.issuer): h.state for h in await issuer_health.current(runtime.services)}
        snapshot = _Snapshot(
            depths,
            await store.outbox_backlog(),
            await sync_metrics.outcome_counts(runtime.sessions),
            await sync_metrics.lag_seconds(runtime.sessions, runtime.services.clock()),
            health,
            await shared.latencies() if isinstance(shared, ProcrastinateJobs) else None,
        )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(snapshot)
        registry.register(SLACK_ACK)
        if not isinstance(shared, ProcrastinateJobs):
            registry.register(JOB_WAIT)
            registry.register(JOB_RUN)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
