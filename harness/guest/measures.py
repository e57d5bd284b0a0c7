"""What the harness measures around a scenario's script, itself, in the guest: a scenario names
its measures (``measure:``, config.scenarios.MEASURES says which metrics each gives) and each is
read before the script and after it. A reading that cannot be trusted (no controller, an
unparsable line) is an error, never a value.

``cgroups``: the scenario's controller's cgroups, live and dying, from /proc/cgroups (on the v2
hierarchy of a kernel without the controller's v1 files, from the root's cgroup.stat), read
until it settles after the script: ``before``, ``after``, ``delta``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.config import ScenarioConfig
from harness.config.scenarios import MEASURES
from harness.core.errors import HarnessError
from harness.guest.ssh import Guest

V2_ROOT = "/sys/fs/cgroup/unified"   # where the guest's /init mounts cgroup2


class Measure:
    name: ClassVar[str]

    @property
    def metrics(self) -> tuple[str, ...]:
        return MEASURES[self.name]

    def before(self, guest: Guest, scenario: ScenarioConfig) -> Any:
        """The reading before the script (passed back to ``after``)."""
        raise NotImplementedError

    def after(self, guest: Guest, scenario: ScenarioConfig, before: Any) -> tuple[dict[str, int], float]:
        """The measure's metrics once the script has run, and the seconds it waited to read them."""
        raise NotImplementedError

    def said(self, scenario: ScenarioConfig, values: dict[str, int]) -> str:
        """A few words of progress on what it read."""
        return ", ".join(f"{k} = {values[k]}" for k in self.metrics)


@dataclass(frozen=True)
class CgroupRow:
    subsys: str
    hierarchy: int
    num_cgroups: int
    enabled: bool


def parse_proc_cgroups(text: str) -> dict[str, CgroupRow]:
    """Parse /proc/cgroups ("#subsys_name hierarchy num_cgroups enabled" and one row each)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#subsys_name"):
        raise HarnessError("scenario", f"/proc/cgroups has no header line: {text[:80]!r}")
    rows = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]) or fields[3] not in "01":
            raise HarnessError("scenario", f"/proc/cgroups: unparsable row {line!r}")
        rows[fields[0]] = CgroupRow(fields[0], int(fields[1]), int(fields[2]), fields[3] == "1")
    return rows


def controller_count(text: str, controller: str, hierarchy: str = "v1") -> int:
    """num_cgroups of ``controller``, which must exist, be enabled and, for v1, be mounted
    (a controller on the v2 hierarchy shows hierarchy 0 and counts all the same)."""
    rows = parse_proc_cgroups(text)
    row = rows.get(controller)
    if row is None:
        raise HarnessError("scenario", f"/proc/cgroups has no {controller} row: is CONFIG_MEMCG set?")
    if not row.enabled:
        raise HarnessError("scenario", f"the {controller} controller is disabled (cgroup_disable=?)")
    if hierarchy == "v1" and row.hierarchy == 0:
        raise HarnessError("scenario", f"the {controller} controller is not mounted on a v1 hierarchy")
    return row.num_cgroups


def v2_count(stat: str) -> int:
    """The cgroups of the v2 hierarchy, live and dying, from its root's cgroup.stat: what
    /proc/cgroups counts for a controller there (its root, its descendants, the dying ones)."""
    values = dict(line.split(None, 1) for line in stat.splitlines() if line.strip())
    try:
        return 1 + int(values["nr_descendants"]) + int(values["nr_dying_descendants"])
    except (KeyError, ValueError):
        raise HarnessError("scenario", f"{V2_ROOT}/cgroup.stat: no nr_descendants and "
                           f"nr_dying_descendants in {stat[:120]!r}") from None


def count_cgroups(guest: Guest, scenario: ScenarioConfig) -> int:
    """The scenario's controller's num_cgroups from /proc/cgroups; on the v2 hierarchy, where a
    kernel without the controller's v1 files has no row for it (7.x without MEMCG_V1), from
    cgroup.stat."""
    text = guest.read("/proc/cgroups")
    if scenario.hierarchy == "v2" and scenario.controller not in parse_proc_cgroups(text):
        return v2_count(guest.read(f"{V2_ROOT}/cgroup.stat"))
    return controller_count(text, scenario.controller, scenario.hierarchy)


def settled_count(count: Callable[[], int], settle: float, before: int, stable: float = 2.0) -> tuple[int, float]:
    """Read the count until it is back to ``before``, has not moved for ``stable`` seconds, or
    ``settle`` seconds have passed.

    A removed cgroup is freed a moment after its last reference goes (RCU, workqueues), so an
    immediate reading can count cgroups that are about to go; a count that stays put is not
    going anywhere (the base kernel's pinned cgroups).
    """
    start = time.monotonic()
    last, since = None, start
    while True:
        value = count()
        now = time.monotonic()
        if value != last:
            last, since = value, now
        if value <= before or now - since >= stable or now - start >= settle:
            return value, now - start
        time.sleep(0.25)


class Cgroups(Measure):
    name = "cgroups"

    def before(self, guest: Guest, scenario: ScenarioConfig) -> int:
        return count_cgroups(guest, scenario)

    def after(self, guest: Guest, scenario: ScenarioConfig, before: int) -> tuple[dict[str, int], float]:
        after, waited = settled_count(lambda: count_cgroups(guest, scenario), scenario.settle, before)
        return {"before": before, "after": after, "delta": after - before}, waited

    def said(self, scenario: ScenarioConfig, values: dict[str, int]) -> str:
        return f"{scenario.controller} cgroups {values['before']} -> {values['after']} ({values['delta']:+d})"


MEASURE_KINDS: dict[str, Measure] = {m.name: m for m in (Cgroups(),)}


def measures(scenario: ScenarioConfig) -> list[Measure]:
    return [MEASURE_KINDS[name] for name in scenario.measure]
