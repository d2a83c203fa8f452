#!/usr/bin/env python3
"""Check the installed Python packages against the public vulnerability database (pip-audit).

    python scripts/audit_deps.py [--strict]

Fails (exit 1) when an installed package has a known vulnerability, naming the versions that fix
it: raise the pin in pyproject.toml. When the vulnerability data cannot be fetched (an offline
machine, a mirror without PyPI's per-release JSON), it prints a WARNING and passes, so that
`make test` still works without the internet; `--strict` turns that warning into a failure.
yuyue itself (installed editable) is not on PyPI and is left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

TIMEOUT_SECONDS = 600


def run_pip_audit() -> tuple[dict[str, Any] | None, str]:
    """The JSON report of pip-audit over this interpreter's environment, or None and the reason."""
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--skip-editable"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return None, f"pip-audit did not finish within {TIMEOUT_SECONDS} s"
    # pip-audit exits 1 when it found vulnerabilities and still prints the report; any other
    # failure (no network, service down) leaves no JSON behind.
    try:
        return json.loads(done.stdout), ""
    except json.JSONDecodeError:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"pip-audit exited with status {done.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help="fail when the vulnerability data cannot be fetched")
    args = parser.parse_args()
    try:
        import pip_audit  # noqa: F401
    except ImportError:
        print("audit: WARNING: pip-audit is not installed (pip install -e '.[dev]'); dependencies NOT audited")
        return 1 if args.strict else 0

    report, problem = run_pip_audit()
    if report is None:
        print(f"audit: WARNING: vulnerability service unreachable, dependencies NOT audited: {problem}")
        return 1 if args.strict else 0

    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    unchecked = [d for d in dependencies if d.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            aliases = " ".join(vuln.get("aliases") or [])
            print(f"audit: {dep['name']} {dep['version']}: {vuln['id']} {aliases} (fixed in: {fixes})")
    checked = len(dependencies) - len(unchecked)
    if unchecked:
        print(
            f"audit: WARNING: {len(unchecked)} of {len(dependencies)} packages could not be checked "
            f"(vulnerability data not available here), e.g. {unchecked[0]['skip_reason']}"
        )
    if vulnerable:
        print(f"audit: {len(vulnerable)} package(s) with known vulnerabilities: raise their pins in pyproject.toml")
        return 1
    if checked:
        print(f"audit: {checked} package(s) checked, no known vulnerabilities")
    else:
        print("audit: WARNING: no package could be checked, dependencies NOT audited")
    return 1 if args.strict and unchecked else 0


if __name__ == "__main__":
    sys.exit(main())
