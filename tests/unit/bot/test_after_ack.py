"""The work after a Slack ack runs a few at a time, and a full backlog says so."""

from __future__ import annotations

import asyncio

import pytest

from bot.slack.after_ack import AfterAck


async def test_no_more_than_the_slots_run_at_once_and_all_of_it_runs() -> None:
    limiter = AfterAck(slots=2, backlog=100)
    running = 0
    most = 0
    done: list[int] = []

    async def work(n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        done.append(n)

    await asyncio.gather(*(limiter.run(work(n)) for n in range(10)))
    assert most == 2
    assert sorted(done) == list(range(10))
    assert limiter.waiting == 0 and not limiter.full


async def test_full_once_the_backlog_waits_and_free_again_after() -> None:
    limiter = AfterAck(slots=1, backlog=2)
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    tasks = [asyncio.create_task(limiter.run(blocked())) for _ in range(3)]
    await asyncio.sleep(0)
    assert limiter.waiting == 2 and limiter.full  # one runs, two wait
    gate.set()
    await asyncio.gather(*tasks)
    assert limiter.waiting == 0 and not limiter.full


async def test_a_waiter_cancelled_gives_its_place_back_and_its_work_never_runs() -> None:
    limiter = AfterAck(slots=1, backlog=5)
    gate = asyncio.Event()
    ran: list[str] = []

    async def blocked() -> None:
        await gate.wait()

    async def never() -> None:
        ran.append("never")

    holder = asyncio.create_task(limiter.run(blocked()))
    waiter = asyncio.create_task(limiter.run(never()))
    await asyncio.sleep(0)
    assert limiter.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting == 0
    gate.set()
    await holder
    assert ran == []


async def test_a_failing_piece_of_work_frees_its_slot() -> None:
    limiter = AfterAck(slots=1, backlog=5)

    async def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await limiter.run(broken())

    async def fine() -> None:
        return None

    await asyncio.wait_for(limiter.run(fine()), timeout=1)
