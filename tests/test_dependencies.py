"""The dependency floors exclude releases with published advisories, and the installed set obeys them."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: package -> the first release without the advisories named in pyproject.toml.
SAFE_FLOORS = {"gunicorn": (23, 0, 0), "requests": (2, 32, 4)}


def release(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


@pytest.mark.parametrize("package", sorted(SAFE_FLOORS))
def test_floor_excludes_vulnerable_releases(package):
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if re.match(rf"{package}\b", d)]
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor, f"{package} has no lower bound: {spec}"
    assert release(floor.group(1)) >= SAFE_FLOORS[package], spec
    assert release(version(package)) >= SAFE_FLOORS[package]
