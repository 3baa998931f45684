"""The suite registry: suite name -> its entries.  Modules that define suites import this and register;
``suites._load`` imports those modules when a suite is first asked for (a plug-in registry without an
import circle: the registrants import this module, not the package that loads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adagrow.registry import Registry


@dataclass(frozen=True)
class Entry:
    name: str  # unique inside the suite; also the run's model label
    dataset: str
    method: str
    model: str | None = None  # fixed: model name; adagrow: family
    recipe: str | None = None  # None: the method's default recipe
    options: dict[str, Any] = field(default_factory=dict)  # fields of the method's config dataclass
    epochs: int | None = None
    smoke: bool = False  # part of the short selection run under ``--profile smoke``
    # part of the converged CPU selection run under ``--profile reference`` (issue 19: the rows a 2-core machine
    # can afford to converge, three seeds each)
    reference: bool = False
    # Options taken, when the suite runs, from the same seed's ok run of another entry (issue 19: a shared pruning
    # base, growers capped at AdaGrow's size, a fixed model of the grown size): option name -> (what, suite, entry),
    # ``what`` one of ``suites.derive.DERIVED``: "checkpoint" (that run's deploy.pt), "params_cap" (its final
    # parameter count plus the cap's 10% band), "arch" (its final architecture).  The entry waits for that run.
    derive: dict[str, tuple[str, str, str]] = field(default_factory=dict)


SUITES: Registry[list[Entry]] = Registry("suite")
