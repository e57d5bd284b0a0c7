"""The generic loader: YAML configs to frozen dataclasses, validated field by field, and the
search path they are found on (configs/, then a kernel tree's .kharness/).

Every error names the file, the field and what was expected, in one line, because a kernel
developer editing a config wants to know where to look, not read a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from harness import REPO_ROOT
from harness.core.errors import ConfigError

T = TypeVar("T")

CONFIG_DIR = REPO_ROOT / "configs"

# A config's name becomes directory and file names (run directories, the cache) and words of the
# guest's shell commands: lower-case letters, digits and . _ -, never a leading dot or dash.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def check_name(file: Path, where: str, value: str) -> None:
    """``value`` as a name (NAME), else an error naming the file and field."""
    if not NAME.fullmatch(value):
        raise ConfigError(file, where, f"expected a name of a-z, 0-9, '.', '_', '-' (not "
                          f"starting with '.', '_' or '-'), got {value[:60]!r}")


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror}")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not text (a byte {e.object[e.start]:#04x} at offset {e.start} is not UTF-8)")
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(path, "", "nested too deep")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(path, where, f"invalid YAML: {problem}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, file: Path, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, file, where)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, file, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(file, where, f"expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {
            _convert(kt, k, file, f"{where}.{k}"): _convert(vt, v, file, f"{where}.{k}")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return from_dict(typing.cast(type, tp), value, file, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e300:
            raise ConfigError(file, where, f"expected a finite number, got {str(value)[:20]}...")
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(file, where, f"expected a finite number, got {value!r}")
    if tp is Any:
        return value
    if tp in (str, int, float, bool) and (type(value) is not tp):
        raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Any, file: Path, where: str = "") -> T:
    """Build dataclass ``cls`` from a YAML mapping, rejecting unknown and missing fields."""
    if not isinstance(data, dict):
        raise ConfigError(file, where or "(top level)", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls)) if f.init}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            file, prefix + str(unknown[0]), f"unknown field (expected one of: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], file, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, prefix + name, f"missing (expected {_type_name(hints[name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(file, where)
    return obj


def load(cls: type[T], path: Path) -> T:
    return from_dict(cls, load_yaml(path), path)


def search_dirs(config_dir: Path = CONFIG_DIR) -> list[Path]:
    """Where configs are looked up, the first match winning: the directories of
    $KHARNESS_CONFIG_PATH (colon-separated), the current directory's .kharness/ (a kernel tree's
    own scenarios, series and kernels), then kharness's configs/. Each holds scenarios/,
    kernels/, series/, profiles/, kconfig/ as configs/ does. A config_dir of its own (the
    tests') is searched alone."""
    if config_dir != CONFIG_DIR:
        return [config_dir]
    extra = [Path(p).expanduser() for p in os.environ.get("KHARNESS_CONFIG_PATH", "").split(":") if p]
    local = Path.cwd() / ".kharness"
    return [*extra, *([local] if local.is_dir() else []), CONFIG_DIR]


def known(kind: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """The names of ``<kind>/*.yaml`` in the search path."""
    return sorted({p.stem for d in search_dirs(config_dir) for p in (d / kind).glob("*.yaml")})


def is_path(name: str) -> bool:
    """A name that is a file of the user's (``my.yaml``, ``dir/x``) rather than a config's name."""
    return name.endswith((".yaml", ".yml")) or "/" in name


def find(kind: str, name: str, config_dir: Path = CONFIG_DIR, file: Path | None = None,
         field: str | None = None) -> Path:
    """The file ``<kind>/<name>.yaml`` in the search path, or ``name`` itself when it is a path
    (relative to the config that names it, else to the current directory); else an error
    listing what exists (naming ``file`` and ``field`` when the name came from another config)."""
    singular = {"arches": "arch", "kernels": "kernel", "scenarios": "scenario",
                "profiles": "profile"}.get(kind, kind)
    if is_path(name):
        path = (file.parent if file is not None else Path.cwd()) / Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(file or path, field or "", f"no such {singular} file: {path}")
        return path
    for d in search_dirs(config_dir):
        path = d / kind / f"{name}.yaml"
        if path.is_file():
            return path
    names = ", ".join(known(kind, config_dir)) or "none"
    if file is not None:
        raise ConfigError(file, field or "", f"unknown {singular} {name!r} (known: {names})")
    raise ConfigError(config_dir / kind, name, f"unknown {singular} (known: {names})")


