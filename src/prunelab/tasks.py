"""The task a run's models are trained and measured on, and its metric: what results rows, run summaries,
comparisons, reports and W&B read instead of assuming accuracy. No torch, so reports load fast.

A task is an option of the `task` config group (`conf/task/<name>.yaml`): its `name`, the settings of
`task()` (the metric, whether higher or lower is better, what "within tolerance of dense" means; the
defaults are classification's) and `module`, the LightningModule it trains with.
"""

import inspect

from dataclasses import dataclass, field
from typing import Any, Callable

from prunelab.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """A task's metric: its column stem (`acc` -> `val_acc`, `test_acc`, `acc_before_ft`), its direction,
    and its tolerance: `within` dense by `tolerance` (a fraction of the dense value when `relative`).
    `percent` shows it in % (x100); `log_axis` draws it on a log scale (perplexity)."""

    name: str
    higher_is_better: bool = True
    tolerance: float = 0.01
    relative: bool = False
    percent: bool = True
    log_axis: bool = False

    @property
    def scale(self) -> float:
        """Shown values are the metric times this."""
        return 100.0 if self.percent else 1.0

    @property
    def unit(self) -> str:
        return " (%)" if self.percent else ""

    @property
    def tolerance_label(self) -> str:
        """The tolerance in a score's name: `1pt` (one point of a percentage), `5pct` (5% of dense), `0.5`."""
        if self.relative:
            return f"{100 * self.tolerance:g}pct"
        return f"{self.scale * self.tolerance:g}pt" if self.percent else f"{self.tolerance:g}"

    @property
    def tolerance_text(self) -> str:
        if self.relative:
            return f"{100 * self.tolerance:g}%"
        return f"{self.scale * self.tolerance:g} point" + "s" * (self.scale * self.tolerance != 1) if self.percent \
            else f"{self.tolerance:g}"

    def limit(self, dense: float) -> float:
        """The worst value still within tolerance of `dense`."""
        margin = self.tolerance * abs(dense) if self.relative else self.tolerance
        return dense - margin if self.higher_is_better else dense + margin

    def within(self, value: float, dense: float) -> bool:
        """Whether `value` is no worse than `dense` by more than the tolerance."""
        limit = self.limit(dense)
        return value >= limit - 1e-9 if self.higher_is_better else value <= limit + 1e-9

    def shortfall(self, best: float, other: float) -> float:
        """How much worse `other` is than `best` (positive when worse), in the metric's units."""
        return best - other if self.higher_is_better else other - best

    def is_best(self, value: float, values) -> bool:
        """Whether `value` is the best of `values` (ties are all best)."""
        top = max(values) if self.higher_is_better else min(values)
        return value == top

    def best_label(self, values) -> Any:
        """The index label of the best value of a pandas Series."""
        return values.idxmax() if self.higher_is_better else values.idxmin()

    def text(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Task:
    """A task: its `name` (a results label), its `metric`, and the LightningModule factory it trains with
    (`module(model, optimizer, scheduler, datamodule=..., channels_last=...)`; None for readers)."""

    name: str
    metric: Metric
    module: Callable | None = field(default=None, compare=False)


def task(name: str, metric: str, higher_is_better: bool = True, tolerance: float = 0.01, relative: bool = False,
         percent: bool = True, log_axis: bool = False, module: Callable | None = None) -> Task:
    """A task from the settings of its config node."""
    if not tolerance >= 0:
        raise ConfigError("task.tolerance", f"must be >= 0, got {tolerance}", "e.g. task.tolerance=0.01")
    return Task(name, Metric(metric, higher_is_better, tolerance, relative, percent, log_axis), module)


CLASSIFICATION = task("classification", "acc")  # runs from before the `task` node, and plain results files


def from_config(config: dict, module: Callable | None = None) -> Task:
    """The task of a resolved plain config (its `task` node), else CLASSIFICATION; `module`: its built factory."""
    node = config.get("task")
    if not node:
        return CLASSIFICATION
    settings = {k: v for k, v in node.items() if k not in ("module", "name")}
    unknown = sorted(set(settings) - set(inspect.signature(task).parameters))
    if unknown:
        raise ConfigError(f"task.{unknown[0]}", "is not a task setting",
                          f"use only {[p for p in inspect.signature(task).parameters if p not in ('name', 'module')]}")
    return task(node["name"], module=module, **settings)
