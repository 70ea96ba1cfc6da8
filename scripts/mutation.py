"""Run mutmut on the core modules, each against the fast tests that cover it, and report the scores.

`make mutation` runs this in `.venv-mutation` (docs/mutation-testing.md). TARGETS below is the one
list of what is mutated and which tests judge it (SCOPES narrows a module to the part under test):
a module that moves changes its line there.

    python scripts/mutation.py                     every target, then the score table
    python scripts/mutation.py realtime/wire/payload.py one target (or several), then the table
    python scripts/mutation.py --report            only the table, from the last runs
    python scripts/mutation.py --survivors         the table and every surviving mutant's diff

Each target runs in a directory of its own under `.mutation/` (its own mutmut config, copy of the
source and results); each run starts afresh, so the table always judges the tests as they are. Exit status 1 when a target ends below MINIMUM_SCORE or its run fails.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
WORK = BASE / ".mutation"
MINIMUM_SCORE = 90.0

# Module to mutate (path in the repository): the fast tests (in-process, no server processes,
# no browser) that judge it. mutmut runs, for each mutant, only those of these tests that call
# the mutated function, so a broad file costs little beyond the first run.
TARGETS: dict[str, tuple[str, ...]] = {
    "trading/execution.py": (
        "tests/test_trading_execution_table.py",
        "tests/test_trading_execution_rules.py",
        "tests/test_trading_order_placement.py",
        "tests/test_trading_resting_orders.py",
        "tests/test_trading_order_changes.py",
    ),
    "realtime/delivery/history.py": (
        "tests/test_history_age.py",
        "tests/test_history_judge.py",
        "tests/test_history_stores.py",
    ),
    "realtime/wire/payload.py": ("tests/test_payload_readers.py",),
    "realtime/wire/protocol.py": ("tests/test_protocol_parsing.py",),
    "trading/services.py": (
        "tests/test_trading_service_rules.py",
        "tests/test_trading_order_placement.py",
        "tests/test_trading_resting_orders.py",
        "tests/test_trading_order_changes.py",
        "tests/test_trading_execution_table.py",
        "tests/test_trading_execution_rules.py",
        "tests/test_trading_interleaving.py",
        "tests/test_order_request_ids.py",
        "tests/test_order_service_records.py",
    ),
    "trading/requests.py": (
        "tests/test_order_request_ids.py",
        "tests/test_trading_order_changes.py",
        "tests/test_trading_service_rules.py",
        "tests/test_order_service_records.py",
    ),
    "trading/validation.py": (
        "tests/test_trading_service_rules.py",
        "tests/test_trading_order_placement.py",
        "tests/test_trading_resting_orders.py",
        "tests/test_trading_order_changes.py",
        "tests/test_order_request_ids.py",
        "tests/test_order_service_records.py",
    ),
    "trading/funds.py": (
        "tests/test_trading_service_rules.py",
        "tests/test_trading_order_placement.py",
        "tests/test_trading_resting_orders.py",
        "tests/test_trading_order_changes.py",
        "tests/test_trading_execution_table.py",
        "tests/test_trading_execution_rules.py",
        "tests/test_trading_interleaving.py",
        "tests/test_order_service_records.py",
    ),
    # Not tests/test_wire_format.py nor tests/test_high_frequency.py: their sockets through the
    # consumer put frames too, and take a minute per mutant in mutmut's forked runs, so mutants
    # timed out there without being wrong; the outbox files below pin what their outbox tests do.
    "realtime/delivery/outbox.py": (
        "tests/test_outbox_rules.py",
        "tests/test_outbox_event_marks.py",
        "tests/test_outbox_counters.py",
        "tests/test_outbox_overflow_bound.py",
        "tests/test_outbox_failure_log.py",
        "tests/test_socket_writer_flow.py",
    ),
    "realtime/server/transport.py": (
        "tests/test_socket_writer.py",
        "tests/test_socket_writer_lookup.py",
        "tests/test_socket_writer_flow.py",
        "tests/test_server_adapter.py",
    ),
    "realtime/bus/inbound.py": (
        "tests/test_bus_messages.py",
        "tests/test_bus_inbound.py",
        "tests/test_bus_poison.py",
        "tests/test_bus_spec_defaults.py",
    ),
    "realtime/bus/bridge.py": (
        "tests/test_bus_inbound.py",
        "tests/test_bus_poison.py",
        "tests/test_bus_spec_defaults.py",
    ),
    "realtime/connection/access.py": (
        "tests/test_access_rules.py",
        "tests/test_access_session_sources.py",
        "tests/test_permission_cache_holders.py",
    ),
    "core/permissions.py": ("tests/test_permission_rules.py",),
    "realtime/connection/gate.py": ("tests/test_gate_rules.py",),
}

# Where only part of a module is under test: the functions (`name`) and methods (`Class.name`,
# `Class.*`) mutated and scored; the rest of the module is left alone.
SCOPES: dict[str, tuple[str, ...]] = {
    # The subscriber's handling of one message; its reconnecting loop, the leader election and the
    # numbering across processes are tested against real Redis (tests/test_bus_bridge.py), too slow here.
    "realtime/bus/bridge.py": ("BusBridge.handle",),
    # The handshake's origin check and credentials; the ASGI gate around them is tested through
    # the consumer (tests/test_handshake.py), too slow to mutate here.
    "realtime/connection/gate.py": (
        "header",
        "bearer_key",
        "credentials",
        "parse_origin",
        "request_secure",
        "request_origin",
        "trusted_origins",
        "origin_allowed",
    ),
    # The judgement of open sockets; the loop that applies it to them (Revalidator, check_consumers,
    # _apply_verdicts) is tested through real sockets (tests/test_access.py), too slow to mutate here.
    "realtime/connection/access.py": (
        "Verdict.*",
        "account_flags",
        "token_session_key",
        "_live_tokens",
        "session_fingerprint",
        "_live_sessions",
        "access_verdicts",
        "load_permissions",
        "PermissionCache.*",
        "session_auth_hash",
    ),
}

# What the copy under .mutation/<target>/mutants needs to import the project and run its tests.
PACKAGES = ("aktienanalyse", "core", "realtime", "trading", "market", "portfolio")
ALSO_COPY = ("pytest.ini", "manage.py", "templates", "locale", "static", "clients/python/src")
# Arguments for every pytest run mutmut starts: the embedded SQLite and in-memory channel layer.
PYTEST_ARGS = ("-p", "no:cacheprovider", "-p", "tests.fixtures.mutation", "-m", "not e2e", "--timeout=120")


@dataclass
class Score:
    """Count one target's mutants by outcome."""

    target: str
    killed: int = 0
    survived: int = 0
    timeout: int = 0
    no_tests: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.timeout + self.no_tests + self.other

    @property
    def percent(self) -> float:
        """Return the share of mutants the tests detect (a timeout counts as detected)."""
        return 100.0 * (self.killed + self.timeout) / self.total if self.total else 0.0


METHOD_SEPARATOR = "\u01c1"  # what mutmut puts between class and method in a mutant's name


def mutant_patterns(target: str) -> list[str]:
    """Return the mutant name patterns of a target's scope (every mutant of the module without one)."""
    module = target.removesuffix(".py").replace("/", ".")
    patterns = []
    for name in SCOPES.get(target, ("*",)):
        if "." in name:  # mutmut names a method's mutants x<sep>Class<sep>method__mutmut_N
            cls, method = name.split(".", 1)
            patterns.append(f"{module}.x{METHOD_SEPARATOR}{cls}{METHOD_SEPARATOR}{method}__mutmut_*")
        else:
            patterns.append(f"{module}.{'x_' + name + '__mutmut_*' if name != '*' else '*'}")
    return patterns


def in_scope(target: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in mutant_patterns(target))


def slug(target: str) -> str:
    """Return the directory name of a target's run."""
    return target.removesuffix(".py").replace("/", ".")


def prepare(target: str) -> Path:
    """Lay out a target's run directory: links to the source, the mutmut config for this target."""
    work = WORK / slug(target)
    work.mkdir(parents=True, exist_ok=True)
    for name in (*PACKAGES, "tests"):
        link = work / name
        if not link.is_symlink():
            link.symlink_to(BASE / name, target_is_directory=True)
    for name in ALSO_COPY:
        link = work / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(BASE / name)
    # settings.VAR_DIR of the copy; the suite checks that the tests leave it alone.
    (work / "mutants" / "var").mkdir(parents=True, exist_ok=True)
    lines = lambda values: "".join(f"\n    {value}" for value in values)  # noqa: E731
    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths ={lines(PACKAGES)}\n"
        f"only_mutate ={lines([target])}\n"
        f"also_copy ={lines(ALSO_COPY)}\n"
        f"pytest_add_cli_args ={lines(PYTEST_ARGS)}\n"
        f"pytest_add_cli_args_test_selection ={lines(TARGETS[target])}\n"
        # The run directory is no git work tree: results are kept until the source changes.
        "use_git_change_detection = false\n"
    )
    return work


def run(target: str, *, max_children: int, timeout: float) -> int:
    """Run mutmut on one target; return its exit status."""
    # Every run starts from a fresh copy: mutmut keeps the verdict of a surviving mutant across
    # runs, which would hide a test added since.
    shutil.rmtree(WORK / slug(target) / "mutants", ignore_errors=True)
    work = prepare(target)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    if target in SCOPES:
        command += mutant_patterns(target)
    print(f"== {target}: {' '.join(TARGETS[target])}", flush=True)
    log = work / "mutmut.log"
    with log.open("w") as output:
        try:
            status = subprocess.run(
                command, cwd=work, env=env, timeout=timeout, stdout=output, stderr=subprocess.STDOUT
            )
        except subprocess.TimeoutExpired:
            print(f"   stopped after {timeout:.0f} s; the table counts what was tested", flush=True)
            return 1
    if status.returncode != 0:
        # mutmut's progress lines end in carriage returns; the last lines say what went wrong.
        lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
        print("\n".join(f"   {line}" for line in lines[-40:]))
        print(f"   mutmut failed (exit status {status.returncode}); the whole output is in {log}", flush=True)
    return status.returncode


def score(target: str) -> Score:
    """Count a target's mutants from mutmut's result file."""
    result = Score(target)
    meta = WORK / slug(target) / "mutants" / f"{target}.meta"
    if not meta.exists():
        return result
    for name, exit_code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if not in_scope(target, name):
            continue
        if exit_code in (1, 3):
            result.killed += 1
        elif exit_code == 0:
            result.survived += 1
        elif exit_code in (36, 24, -24, 152, 255):
            result.timeout += 1
        elif exit_code in (5, 33):
            result.no_tests += 1
        else:
            result.other += 1
    return result


def survivors(target: str) -> list[str]:
    """Return the names of a target's mutants that no test detected."""
    meta = WORK / slug(target) / "mutants" / f"{target}.meta"
    if not meta.exists():
        return []
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return sorted(name for name, code in codes.items() if code in (0, 5, 33) and in_scope(target, name))


def report(targets: list[str], *, diffs: bool) -> bool:
    """Print the score table (and the survivors' diffs); return whether every target passed."""
    rows = [score(target) for target in targets]
    print(f"\n{'module':34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no tests':>8} {'score':>7}")
    for row in rows:
        print(
            f"{row.target:34} {row.total:7} {row.killed:6} {row.timeout:7} {row.survived:8} {row.no_tests:8}"
            f" {row.percent:6.1f}%"
        )
    total = Score(
        "all",
        *(sum(getattr(row, field) for row in rows) for field in ("killed", "survived", "timeout", "no_tests", "other")),
    )
    print(
        f"{'all':34} {total.total:7} {total.killed:6} {total.timeout:7} {total.survived:8} {total.no_tests:8} {total.percent:6.1f}%"
    )
    for target in targets:
        names = survivors(target)
        if names:
            print(f"\nsurviving in {target}:")
        for name in names:
            print(f"  {name}")
            if diffs:
                shown = subprocess.run(
                    [sys.executable, "-m", "mutmut", "show", name],
                    cwd=WORK / slug(target),
                    capture_output=True,
                    text=True,
                )
                print("    " + shown.stdout.replace("\n", "\n    "))
    return all(row.total and row.percent >= MINIMUM_SCORE for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="modules to mutate (default: every one in TARGETS)")
    parser.add_argument("--report", action="store_true", help="only print the table of the last runs")
    parser.add_argument("--survivors", action="store_true", help="also print each surviving mutant's diff")
    parser.add_argument("--max-children", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("MUTATION_TIMEOUT", "1200")))
    options = parser.parse_args()
    unknown = [target for target in options.targets if target not in TARGETS]
    if unknown:
        parser.error(f"not in TARGETS: {', '.join(unknown)}")
    targets = options.targets or list(TARGETS)
    failed = False
    if not (options.report or options.survivors):
        for target in targets:
            failed |= run(target, max_children=options.max_children, timeout=options.timeout) != 0
    return 0 if report(targets, diffs=options.survivors) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
