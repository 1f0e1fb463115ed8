"""Check the installed packages of a virtual environment against the Python advisory database.

Run with a Python that has pip-audit installed: ``advisories.py VENV_PYTHON``. pip-audit asks
PyPI's JSON API (the PyPA advisory database). Known vulnerabilities fail the run (exit 1). When
the database cannot be reached, or it knows none of the installed packages (a local mirror
without advisory data), the packages were NOT checked: this says so loudly and exits 0, since an
offline build is not a vulnerable one, but nobody should read silence as a clean audit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(target_python: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off"]
        command += ["--timeout", "30", "--format", "json", "--output", str(report)]
        run = subprocess.run(
            command,
            env={**os.environ, "PIPAPI_PYTHON_LOCATION": target_python},
            capture_output=True,
            text=True,
            timeout=600,
        )
        document = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
    if document is None:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"ADVISORIES NOT CHECKED: the advisory database could not be reached ({last})")
        return 0
    dependencies = document.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "skip_reason" not in d]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixed})")
    if vulnerable:
        return 1
    if not audited:
        print(
            f"ADVISORIES NOT CHECKED: the advisory database knows none of the {len(dependencies)} "
            "installed packages (no network to PyPI, or a mirror without advisory data)"
        )
        return 0
    skipped = len(dependencies) - len(audited)
    print(f"advisories: {len(audited)} packages checked, no known vulnerabilities ({skipped} not found)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
