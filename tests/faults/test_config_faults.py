"""Rows: malformed YAML, an unknown field, a wrong type, an unknown arch or scenario.

Through the real command line: exit status 2 and one line on stderr naming the file, the field
and what was expected. A broken config lives in a copy of the checkout (``checkout``), so the
harness reads it exactly where a user's edit would be.
"""

from __future__ import annotations

import pytest

from harness import REPO_ROOT
from harness.config.arches import all_arches

from .conftest import kharness

pytestmark = pytest.mark.faults

RUN = ("run", "--arch", "x86_64", "--variant", "base")


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kharness: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_arch_names_the_option_value_and_the_known_ones(tmp_path):
    line = one_error_line(kharness("run", "--arch", "riscv9", "--variant", "base",
                                   "--results", str(tmp_path)))
    assert line == f"kharness: config: unknown arch 'riscv9' (known: {', '.join(all_arches())}, all)"
    assert list(tmp_path.iterdir()) == []   # refused before any run directory


def test_no_guest_at_a_time_is_refused_before_any_run_directory(tmp_path):
    line = one_error_line(kharness(*RUN, "--jobs", "0", "--results", str(tmp_path)))
    assert line == "kharness: config: --jobs 0: at least 1 guest at a time"
    assert list(tmp_path.iterdir()) == []


def test_unknown_scenario_names_the_directory_and_the_known_ones(tmp_path):
    line = one_error_line(kharness(*RUN, "--scenario", "nosuch", "--results", str(tmp_path)))
    shipped = sorted(p.stem for p in (REPO_ROOT / "configs" / "scenarios").glob("*.yaml"))
    assert {"dying-memcg", "kmem-charge", "cgroup-selftests"} <= set(shipped)
    assert line.endswith(f"configs/scenarios: nosuch: unknown scenario (known: {', '.join(shipped)})")


def test_malformed_yaml_names_the_file_and_line(checkout, tmp_path):
    path = checkout / "configs/scenarios/broken.yaml"
    path.write_text("name: broken\nscript: dying-memcg.sh\niterations: [1, 2\n")
    line = one_error_line(kharness(*RUN, "--scenario", "broken", "--results", str(tmp_path),
                                   cwd=checkout))
    assert line.startswith(f"kharness: {path}: line 4: invalid YAML: ")


def test_unknown_field_names_the_file_the_field_and_the_known_fields(checkout, tmp_path):
    path = checkout / "configs/scenarios/dying-memcg.yaml"
    path.write_text(path.read_text() + "iteratoins: 50\n")
    line = one_error_line(kharness(*RUN, "--results", str(tmp_path), cwd=checkout))
    assert line.startswith(f"kharness: {path}: iteratoins: unknown field (expected one of: name, "
                           "script, ")


def test_wrong_type_names_the_file_the_field_and_the_expected_type(checkout, tmp_path):
    path = checkout / "configs/arches/x86_64.yaml"
    path.write_text(path.read_text().replace("boot_deadline: 90", "boot_deadline: soon"))
    line = one_error_line(kharness(*RUN, "--results", str(tmp_path), cwd=checkout))
    assert line == f"kharness: {path}: boot_deadline: expected a number, got 'soon'"


def test_scenario_script_outside_guest_scripts_is_refused(checkout, tmp_path):
    path = checkout / "configs/scenarios/dying-memcg.yaml"
    path.write_text(path.read_text().replace("script: dying-memcg.sh", "script: ../../../../../../../../../etc/passwd"))
    line = one_error_line(kharness(*RUN, "--results", str(tmp_path), cwd=checkout))
    assert line == (f"kharness: {path}: script: expected a file under guest-scripts/, got "
                    "'../../../../../../../../../etc/passwd'")
    assert list(tmp_path.iterdir()) == [checkout]   # refused before any run directory
