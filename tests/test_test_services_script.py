"""scripts/with-test-services.sh: `make test` (and so CI) reports what the test command reported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "with-test-services.sh"


def run(command, **env):
    # The run's own servers are the slow path; the names point the script at given servers so it
    # starts none, and the command never connects to them.
    environment = {
        **os.environ,
        "PY": sys.executable,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        **env,
    }
    return subprocess.run(["bash", str(SCRIPT), *command], env=environment, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("status", [0, 1, 2, 5])
def test_the_script_exits_with_the_commands_status(status):
    result = run([sys.executable, "-c", f"import sys; sys.exit({status})"])
    assert result.returncode == status, result.stderr


def test_the_command_sees_the_servers_the_script_names():
    result = run([sys.executable, "-c", "import os; print(os.environ['DATABASE_URL'], os.environ['REDIS_URL'])"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["postgres://nobody@127.0.0.1:9/none", "redis://127.0.0.1:9/0"]
