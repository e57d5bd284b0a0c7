"""The README's plugin example is the test file that runs: they cannot drift apart."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_plugin_example_is_the_tested_file():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    example = (ROOT / "tests/boot/test_guest_example.py").read_text()
    assert example in blocks
