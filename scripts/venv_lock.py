"""Hold a virtualenv to the lock: every package installed is one the lock pins, at its version.

`python scripts/venv_lock.py check` reports what breaks the lock's contract: a requirement that is
not pinned with `==` or has no hash, a package installed that the lock does not list, one the lock
lists at another version or not installed. `prune` uninstalls what is installed but not locked
(packages a former lock had, or the setuptools a Python 3.11 venv starts with), which
`make venv` runs after installing the lock. Exit status 1 when anything is reported.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.txt"
# One requirement of a pip-compile lock with hashes: `name==version \` then `--hash=sha256:...` lines.
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def canonical(name: str) -> str:
    """Return a project name as PEP 503 compares names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(text: str) -> list[list[str]]:
    """Split a requirements file into its requirements, each the list of its parts (comments dropped)."""
    entries: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        code = line.split("#", 1)[0].strip()
        if not code:
            continue
        continued = code.endswith("\\")
        current.extend(code.rstrip("\\").split())
        if not continued:
            entries.append(current)
            current = []
    if current:
        entries.append(current)
    return entries


def lock_problems(text: str) -> tuple[dict[str, str], list[str]]:
    """Return the lock's pins (canonical name: version) and what is wrong with its lines."""
    pins: dict[str, str] = {}
    problems: list[str] = []
    for parts in requirements(text):
        requirement, options = parts[0], parts[1:]
        match = _PIN.match(requirement)
        if match is None:
            problems.append(f"not pinned with ==: {' '.join(parts)}")
            continue
        hashes = [option for option in options if _HASH.match(option)]
        if not hashes or len(hashes) != len(options):
            problems.append(f"{requirement}: every requirement needs sha256 hashes and nothing else")
        name = canonical(match["name"])
        if name in pins:
            problems.append(f"{requirement}: pinned twice")
        pins[name] = match["version"]
    if not pins:
        problems.append("the lock pins nothing")
    return pins, problems


def installed(python: str = sys.executable) -> dict[str, str]:
    """Return every distribution installed for `python` (pip included): canonical name: version."""
    output = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, separator, version = line.partition("==")
        if not separator:  # an editable or direct URL install: never pinned by the lock
            found[line] = "?"
            continue
        found[canonical(name)] = version
    return found


def venv_problems(pins: dict[str, str], present: dict[str, str]) -> list[str]:
    """Compare what is installed with what the lock pins."""
    problems = [
        f"installed but not locked: {name}=={version}" for name, version in sorted(present.items()) if name not in pins
    ]
    for name, version in sorted(pins.items()):
        if name not in present:
            problems.append(f"locked but not installed: {name}=={version}")
        elif present[name] != version:
            problems.append(f"{name}: {present[name]} installed, {version} locked")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("check", "prune"):
        print(f"usage: {argv[0]} check|prune", file=sys.stderr)
        return 2
    pins, problems = lock_problems(LOCK.read_text())
    if argv[1] == "prune":
        extra = [name for name in installed() if name not in pins]
        if extra:
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *extra], check=True)
    problems += venv_problems(pins, installed())
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
