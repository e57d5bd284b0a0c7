"""report.json read as what it is: a file from another machine (a CI artifact, a mail).

Every value is checked against the type its dataclass declares, and every name that becomes a
path (arch, variant, profile, scenario, a log's place in the run directory) against NAME, before
any of it is used: a wrong type, a NaN, a nesting too deep or a `../` is one line naming the file
and the field (stage ``report``), never a traceback read as a verdict or a write outside the run.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from harness.config.loader import NAME, _convert
from harness.core.errors import ConfigError, HarnessError
from harness.verdict.kinds import KINDS
from harness.verdict.testruns import LEGACY_RUNS
from harness.verdict.results import KernelMeta, PatchMeta, RunMeta, RunRecord, ScenarioResult, SeriesMeta

KEY = re.compile(r"[0-9a-f]{64}")   # a cache key (kernels/<key>): sha256 hex
MAX_BYTES = 64 << 20                # a report.json of a thousand kernels is a few MB


class Unfit(Exception):
    """A value of report.json that cannot be used: ``where`` is its field path."""

    def __init__(self, where: str, message: str):
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}")


def is_name(value: object) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def is_relative_inside(value: object) -> bool:
    """A relative path with no `..`, no empty part: a place inside a directory, as written."""
    if not isinstance(value, str) or not value or "\\" in value or "\0" in value:
        return False
    parts = PurePosixPath(value).parts
    return not PurePosixPath(value).is_absolute() and all(p not in ("..", ".") for p in parts) \
        and value.split("/") == list(parts)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, stage: str = "report") -> Any:
    """A JSON file, or one line saying why it cannot be read (missing, binary, NaN, too deep)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise HarnessError(stage, f"cannot read {path}: {e.strerror or e}")
    if len(data) > MAX_BYTES:
        raise HarnessError(stage, f"{path}: larger than {MAX_BYTES >> 20} MB: not a kharness report")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise HarnessError(stage, f"{path}: nested too deep to be a kharness report") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise HarnessError(stage, f"{path}: not JSON ({str(e).splitlines()[0]})") from None


@dataclass(frozen=True)
class Repeat:
    """One of --repeat's runs as ScenarioResult.repeats keeps it (repeat.combine)."""

    held: bool | None = None
    failed: tuple[str, ...] = ()
    metrics: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    script_seconds: float | None = None


def _typed(cls: type, data: Any, where: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``cls`` that ``data`` has, each converted to its declared type (lists to
    tuples); fields ``cls`` does not know are left out (another schema's)."""
    if not isinstance(data, dict):
        raise Unfit(where or "(top level)", f"expected a mapping, got {_short(data)}")
    hints = typing.get_type_hints(cls)
    out = {}
    prefix = f"{where}." if where else ""
    for f in fields(cls):
        if f.name not in data:
            if f.name in required:
                raise Unfit(prefix + f.name, "missing")
            continue
        try:
            out[f.name] = _convert(hints[f.name], data[f.name], Path(), prefix + f.name)
        except ConfigError as e:
            said = e.message[len(f"{Path()}: {e.field}: "):]
            raise Unfit(e.field, said if len(said) <= 120 else said[:117] + "...") from None
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _name(value: Any, where: str) -> None:
    if not is_name(value):
        raise Unfit(where, f"expected a name ([a-z0-9][a-z0-9._-]*), got {_short(value)}")


LEGACY_METRICS = ("before", "after", "delta")   # fields of a result in schemas 1 and 2


def _scenario(data: Any, where: str) -> ScenarioResult:
    values = _typed(ScenarioResult, data, where, ("arch", "variant", "scenario", "iterations", "expectation"))
    for name in LEGACY_METRICS:   # schema 1 and 2: its own field, now a metric
        old = data.get(name)
        if old is not None and (not isinstance(old, int) or isinstance(old, bool)):
            raise Unfit(f"{where}.{name}", f"expected an integer, got {_short(old)}")
        if old is not None:
            values["metrics"] = {name: old, **values.get("metrics", {})}
    for name in ("arch", "variant", "profile", "scenario"):
        if name in values:
            _name(values[name], f"{where}.{name}")
    if values.get("kind", "fix") not in KINDS:
        raise Unfit(f"{where}.kind", f"expected one of {', '.join(KINDS)}, got {_short(values['kind'])}")
    for test, result in values.get("tests", {}).items():
        if result not in LEGACY_RUNS:
            raise Unfit(f"{where}.tests.{test}", f"expected one of {', '.join(LEGACY_RUNS)}, got {_short(result)}")
    for test, runs in values.get("test_runs", {}).items():
        if not re.fullmatch(r"[pfs]+", runs):
            raise Unfit(f"{where}.test_runs.{test}", f"expected letters p, f, s, got {_short(runs)}")
    judged = values.get("error") is None and values.get("held") is not None
    if judged and "delta" in values.get("show", ("delta",)):   # the table shows before -> after (delta)
        for name in LEGACY_METRICS:
            if name not in values.get("metrics", {}):
                raise Unfit(f"{where}.metrics.{name}", "missing from a result that was judged and shows the delta")
    if "repeats" in values:
        values["repeats"] = tuple(_repeat(r, f"{where}.repeats[{i}]") for i, r in enumerate(values["repeats"]))
    return ScenarioResult(**values)


def _repeat(data: Any, where: str) -> dict[str, Any]:
    values = _typed(Repeat, data, where)
    return {"held": values.get("held"), "failed": list(values.get("failed", ())),
            "metrics": values.get("metrics") or {}, "error": values.get("error"),
            "script_seconds": values.get("script_seconds")}


def _run(data: Any, where: str) -> RunRecord:
    values = _typed(RunRecord, {k: v for k, v in data.items() if k != "scenarios"}
                    if isinstance(data, dict) else data, where, ("arch", "variant"))
    for name in ("arch", "variant", "profile"):
        if name in values:
            _name(values[name], f"{where}.{name}")
    if values.get("kernel_key") is not None and not KEY.fullmatch(values["kernel_key"]):
        raise Unfit(f"{where}.kernel_key", f"expected 64 hex digits, got {_short(values['kernel_key'])}")
    for name, rel in values.get("logs", {}).items():
        if not is_relative_inside(rel):
            raise Unfit(f"{where}.logs.{name}", f"expected a path inside the run directory, got {_short(rel)}")
    scenarios = data.get("scenarios", [])
    if not isinstance(scenarios, list):
        raise Unfit(f"{where}.scenarios", f"expected a list, got {_short(scenarios)}")
    return RunRecord(**values, scenarios=tuple(_scenario(s, f"{where}.scenarios[{i}]")
                                                for i, s in enumerate(scenarios)))


def _meta(data: dict[str, Any]) -> RunMeta:
    meta = _typed(RunMeta, {k: v for k, v in data.items() if k not in ("kernel", "series")}, "")
    for i, p in enumerate(meta.get("profiles", ())):
        _name(p, f"profiles[{i}]")
    if not isinstance(data.get("kernel", {}), dict):
        raise Unfit("kernel", f"expected a mapping, got {_short(data['kernel'])}")
    if data.get("series") is not None and not isinstance(data["series"], dict):
        raise Unfit("series", f"expected a mapping, got {_short(data['series'])}")
    kernel = _typed(KernelMeta, data.get("kernel", {}), "kernel")
    clean = {**meta, "kernel": kernel, "profiles": list(meta.get("profiles", ()))}
    series = data.get("series")
    if series:
        s = _typed(SeriesMeta, {k: v for k, v in series.items() if k != "patches"}, "series")
        patches = series.get("patches", [])
        if not isinstance(patches, list):
            raise Unfit("series.patches", f"expected a list, got {_short(patches)}")
        s["patches"] = [_typed(PatchMeta, p, f"series.patches[{i}]", ("file", "subject", "sha256"))
                        for i, p in enumerate(patches)]
        clean["series"] = s
    return RunMeta.from_json(clean)


def load(path: Path, readable: tuple[int, ...]) -> tuple[RunMeta, list[RunRecord]]:
    """The metadata and records of the report.json at ``path``, every field checked."""
    data = read_json(path)
    try:
        if not isinstance(data, dict):
            raise Unfit("(top level)", f"expected a mapping, got {_short(data)}")
        if data.get("schema") not in readable or isinstance(data.get("schema"), bool):
            raise Unfit("schema", f"{_short(data.get('schema'))}, this kharness reads "
                        f"{', '.join(map(str, readable))}")
        runs = data.get("runs")
        if not isinstance(runs, list):
            raise Unfit("runs", f"expected a list, got {_short(runs)}")
        records = [_run(r, f"runs[{i}]") for i, r in enumerate(runs)]
        return _meta(data), records
    except Unfit as e:
        raise HarnessError("report", f"{path}: {e}") from None
    except RecursionError:
        raise HarnessError("report", f"{path}: nested too deep to be a kharness report") from None
