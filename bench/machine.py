"""The machine a run was made on, as the report states it."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from dataclasses import dataclass

from bench.databases import postgres_version


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gb: float
    cpu: str
    system: str
    python: str
    sqlite: str
    postgresql: str

    def lines(self) -> list[str]:
        return [
            f"- CPU: {self.cpu}, {self.cores} cores available",
            f"- memory: {self.memory_gb:.1f} GB",
            f"- system: {self.system}",
            f"- Python {self.python}, SQLite {self.sqlite}, PostgreSQL {self.postgresql}",
        ]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> Machine:
    return Machine(
        cores=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 0,
        memory_gb=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
        cpu=_cpu_name(),
        system=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        sqlite=sqlite3.sqlite_version,
        postgresql=postgres_version() or "not available",
    )
