"""The work Slack requests leave after their ack, run a few at a time.

An asyncio event loop has no priorities: when every command's back-end work runs at
once, a new request waits behind all of their steps before it is even acked. Holding
that work to a few slots keeps the loop free for acks (Slack gives up after 3 s); the
rest wait suspended, which costs no CPU. Past ``backlog`` waiting pieces of work a new
command is acked with "busy, try again" instead of piling up without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

# Enough to keep the back end busy (its calls wait on the database and the issuers),
# few enough that an ack finds the loop free.
DEFAULT_SLOTS = 4
# Well beyond any burst of people (each waiting piece is one suspended coroutine).
DEFAULT_BACKLOG = 2_000


class AfterAck:
    def __init__(self, slots: int = DEFAULT_SLOTS, backlog: int = DEFAULT_BACKLOG) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._backlog = backlog
        self.waiting = 0

    @property
    def full(self) -> bool:
        """Whether new work would only wait too long: the command says "busy" instead."""
        return self.waiting >= self._backlog

    async def run(self, work: Awaitable[None]) -> None:
        """Run ``work`` when a slot is free."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self.waiting -= 1
            if asyncio.iscoroutine(work):
                work.close()
            raise
        self.waiting -= 1
        try:
            await work
        finally:
            self._slots.release()
