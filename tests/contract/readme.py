"""What the README gives a tally team, read from the README itself: the signature test vector
and the receiver recipe, so the tests check exactly the text a team would copy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def _between(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    assert start in text and end in text, f"README lost its {marker} block"
    return text[text.index(start) + len(start) : text.index(end)]


def test_vector() -> dict[str, str]:
    """``{"secret", "t", "body", "v1"}`` from the README's test-vector table."""
    rows = re.findall(r"^\|\s*`?(secret|t|body|v1)`?\s*\|\s*`(.*)`\s*\|\s*$", _between("test-vector"), re.M)
    found = dict(rows)
    assert set(found) == {"secret", "t", "body", "v1"}, found
    return found


test_vector.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def receiver_recipe() -> str:
    """The Python receiver of the README, verbatim."""
    block = _between("recipe:receiver")
    match = re.search(r"```python\n(.*?)```", block, re.S)
    assert match, "the recipe block has no python code"
    return match.group(1)


def stop(*processes: subprocess.Popen | None) -> None:
    """Terminate every process given, then wait for each (killing one that will not stop), so a
    slow one never leaves the others running."""
    alive = [p for p in processes if p is not None and p.poll() is None]
    for process in alive:
        process.terminate()
    for process in alive:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
