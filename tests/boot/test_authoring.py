"""kharness shell: a real guest of a cached kernel, the scenario's script and programs staged,
commands from stdin (a terminal gets an interactive shell)."""

import subprocess
import sys

import pytest

from harness import REPO_ROOT


@pytest.mark.boot
@pytest.mark.x86_64
@pytest.mark.base
def test_a_shell_runs_where_the_scenario_would_with_its_programs(tmp_path):
    commands = b"pwd; ls; test -x ./kstack-pin && echo helper-built; grep -c . /proc/cgroups; exit 3\n"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "shell", "--kernel", "linux-5.10",
                        "--arch", "x86_64", "--scenario", "dying-memcg-v2", "--results", str(tmp_path), "-q"],
                       input=commands, capture_output=True, cwd=REPO_ROOT, timeout=1800)
    out = r.stdout.decode()
    assert r.returncode == 3, r.stderr.decode()[-2000:]
    lines = out.splitlines()
    assert lines[0] == "/tmp/kharness" and "dying-memcg-v2.sh" in lines and "kharness-lib.sh" in lines
    assert "helper-built" in lines
