import os
from pathlib import Path

import pytest
from django.conf import settings

pytest_plugins = [
    "tests.fixtures.users",
    "tests.fixtures.ws",
    "tests.fixtures.servers",
    "tests.fixtures.ops",
    "tests.fixtures.trading",
    "tests.fixtures.market",
    "tests.fixtures.bus",
    "tests.fixtures.history",
    "tests.fixtures.loop_teardown",
]

VAR_DIR = Path(settings.VAR_DIR)


def var_snapshot() -> dict[str, tuple[int, int]]:
    """Return size and modification time of every file under the project's var/."""
    found = {}
    for root, _, files in os.walk(VAR_DIR):
        for name in files:
            path = Path(root, name)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found[str(path.relative_to(VAR_DIR))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def developer_state_untouched(tmp_path_factory):
    """Give the suite (and the processes it starts) state files of its own; fail if it changed var/."""
    before = var_snapshot()
    patch = pytest.MonkeyPatch()
    login_file = tmp_path_factory.mktemp("state") / "demo-login.txt"
    patch.setenv("DEMO_LOGIN_FILE", str(login_file))
    patch.setattr(settings, "DEMO_LOGIN_FILE", login_file)
    yield
    patch.undo()
    after = var_snapshot()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the test suite created, changed or removed files in {VAR_DIR}: {changed}"


@pytest.fixture(autouse=True)
def _e2e_marker_known(request):
    """Tell the server launchers whether the running test is marked e2e (`make test-fast` leaves
    those out, so a test that starts a server process must carry the mark)."""
    from tests.fixtures import servers

    servers.running_e2e = request.node.get_closest_marker("e2e") is not None
    yield
    servers.running_e2e = None
