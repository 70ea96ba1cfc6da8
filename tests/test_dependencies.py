"""The locks: every Python and Node package installed is pinned, with the hash of its files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import venv_lock  # noqa: E402

BASE = Path(__file__).resolve().parent.parent


def test_every_requirement_of_the_lock_is_pinned_with_hashes():
    pins, problems = venv_lock.lock_problems(venv_lock.LOCK.read_text())
    assert problems == []
    assert {"django", "daphne", "twisted", "autobahn", "asgiref", "pip"} <= set(pins)  # direct and transitive


def test_the_venv_holds_exactly_what_the_lock_pins():
    pins, _ = venv_lock.lock_problems(venv_lock.LOCK.read_text())
    assert venv_lock.venv_problems(pins, venv_lock.installed()) == []


def test_every_package_the_project_asks_for_is_in_the_lock_at_the_version_asked():
    pins, _ = venv_lock.lock_problems(venv_lock.LOCK.read_text())
    for parts in venv_lock.requirements((BASE / "requirements.in").read_text()):
        name, _, version = parts[0].partition("==")
        assert pins.get(venv_lock.canonical(name.split("[")[0])) == version, parts[0]


@pytest.mark.parametrize(
    "lock, problem",
    [
        ("django==5.2.19\n", "every requirement needs sha256 hashes"),
        ("django>=5.2 \\\n    --hash=sha256:" + "a" * 64 + "\n", "not pinned with =="),
        (
            "django==5.2.19 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --no-binary=:all:\n",
            "every requirement needs",
        ),
        ("# nothing\n", "the lock pins nothing"),
    ],
)
def test_the_lock_check_reports_an_unpinned_or_unhashed_line(lock, problem):
    _, problems = venv_lock.lock_problems(lock)
    assert any(problem in reported for reported in problems), problems


def test_the_venv_check_reports_a_package_installed_beside_the_lock_and_one_at_another_version():
    problems = venv_lock.venv_problems(
        {"django": "5.2.19", "pip": "26.3"}, {"django": "5.2.18", "pip": "26.3", "six": "1.17.0"}
    )
    assert problems == ["installed but not locked: six==1.17.0", "django: 5.2.18 installed, 5.2.19 locked"]


@pytest.mark.parametrize("folder", [".", "bench"])
def test_node_packages_are_pinned_exactly_and_locked_with_integrity_hashes(folder):
    manifest = json.loads((BASE / folder / "package.json").read_text())
    lock = json.loads((BASE / folder / "package-lock.json").read_text())
    wanted = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    assert wanted
    for name, version in wanted.items():
        assert version[0].isdigit(), f"{name}: {version} is a range; pin one version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    for path, entry in lock["packages"].items():
        if path:  # "" is the project itself
            assert entry["version"] and entry["integrity"].startswith("sha512-"), path
