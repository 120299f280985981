"""What a figure reports: one or more rows of the table, and points for the chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Better = Literal["higher", "lower", "equal"]


@dataclass
class Row:
    """One line of the table.

    ``value`` and ``baseline`` are numbers in ``unit``; ``ratio`` is value ÷ baseline;
    ``goal`` is read against the ratio unless ``goal_on_value`` is set. A row that could
    not be measured carries ``unavailable`` (the reason) and is never met.
    """

    figure: str
    unit: str
    value: float | None = None
    baseline: float | None = None
    goal: str = "reported"
    goal_bound: float | None = None
    better: Better = "higher"
    goal_on_value: bool = False
    unavailable: str | None = None
    chart: Literal["throughput", "latency", "none"] = "none"

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool:
        if self.unavailable is not None or self.value is None:
            return False
        if self.goal_bound is None:
            return True  # "reported": running it is the goal
        measured = self.value if self.goal_on_value else self.ratio
        if measured is None:
            return False
        if self.better == "higher":
            return measured >= self.goal_bound
        if self.better == "equal":
            return measured == self.goal_bound
        return measured <= self.goal_bound

    def as_json(self) -> dict[str, Any]:
        value: float | str | None = self.value
        if self.unavailable is not None:
            value = f"not available: {self.unavailable}"
        return {
            "figure": f"{self.figure} ({self.unit})",
            "value": value,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "goal": self.goal,
            "met": self.met,
        }


@dataclass
class FigureResult:
    """All rows of one figure, with notes that go under the table."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def unavailable(name: str, rows: list[tuple[str, str, str]], reason: str) -> FigureResult:
    """A figure that could not run: each of its rows present, saying why.

    Args:
        name: The figure.
        rows: (figure, unit, goal) of each row it would have reported.
        reason: Why it could not run, in a few words.
    """
    return FigureResult(
        name,
        [Row(figure, unit, goal=goal, unavailable=reason) for figure, unit, goal in rows],
    )
