"""The npm package of the TypeScript client: packed, installed into a scratch project, compiled, connected.

The scratch project (`tests/clients/npm-scratch`) installs nothing from the registry: the packed
tarball, and the repository's own `ws` for the socket. Its program compiles with the repository's
TypeScript, strict and without DOM types, against the package's `.d.ts` alone, then talks to a
real daphne.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from realtime.wire.events import EVENT_SCHEMAS
from realtime.services import access_token_issue
from tests.fixtures.servers import BASE_DIR

pytestmark = [pytest.mark.e2e]

PACKAGE = BASE_DIR / "clients" / "typescript"
SCRATCH = BASE_DIR / "tests" / "clients" / "npm-scratch"
TSC = BASE_DIR / "node_modules" / "typescript" / "bin" / "tsc"


def run(*command: str, cwd, env=None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def scratch_project(tmp_path_factory):
    """A copy of the scratch project with the packed client installed into it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None or not TSC.exists():
        pytest.fail("node, npm and the repository's node packages (`npm ci`) are needed for this test")
    work = tmp_path_factory.mktemp("npm-package")
    packed = run(npm, "pack", "--json", "--pack-destination", str(work), cwd=PACKAGE)
    assert packed.returncode == 0, packed.stderr
    tarball = work / json.loads(packed.stdout)[0]["filename"]
    project = work / "scratch"
    shutil.copytree(SCRATCH, project)
    installed = run(
        npm,
        "install",
        str(tarball),
        str(BASE_DIR / "node_modules" / "ws"),
        "--offline",
        "--no-audit",
        "--no-fund",
        cwd=project,
    )
    assert installed.returncode == 0, installed.stderr
    return project


def test_the_packed_tarball_holds_the_built_client_its_types_and_readme(scratch_project):
    installed = scratch_project / "node_modules" / "@aktienanalyse" / "event-client"
    manifest = json.loads((installed / "package.json").read_text())

    assert manifest["version"] == json.loads((PACKAGE / "package.json").read_text())["version"]
    assert manifest["exports"]["."] == {"types": "./dist/event-client.d.ts", "import": "./dist/event-client.js"}
    files = {p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.is_file()}
    assert {"dist/event-client.js", "dist/event-client.d.ts", "dist/events.generated.d.ts", "README.md"} <= files
    # the event types shipped are those generated from the schema table now
    assert "fill_price: DecimalNumber;" in (installed / "dist" / "events.generated.d.ts").read_text()


def test_a_program_using_the_types_wrongly_does_not_compile(scratch_project):
    result = run("node", str(TSC), "-p", "tsconfig.wrong.json", cwd=scratch_project)

    assert result.returncode != 0
    errors = result.stdout
    assert "Property 'fill_prise' does not exist on type 'OrderFilledData'" in errors
    assert "wrong.ts(4," in errors  # heartbeat_interval is a number
    assert "wrong.ts(6," in errors  # subscribe takes a list


@pytest.mark.django_db(transaction=True)
def test_the_packed_client_compiles_strictly_and_connects_to_a_real_gateway(scratch_project, daphne_server, staff_user):
    # given a program compiled against the installed package (strict, no DOM types)
    compiled = run("node", str(TSC), "-p", "tsconfig.json", cwd=scratch_project)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    _, key = access_token_issue(user=staff_user, name="npm package test")

    # when it runs against daphne with a staff member's token
    env = {
        "PATH": os.environ["PATH"],
        "GATEWAY_URL": daphne_server.ws_url,
        "GATEWAY_ORIGIN": daphne_server.http_url,
        "GATEWAY_TOKEN": key,
    }
    result = run("node", "main.js", cwd=scratch_project, env=env, timeout=60)

    # then it was connected, its subscription confirmed, and its command answered
    assert result.returncode == 0, result.stdout + result.stderr + daphne_server.log()
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == "connected"
    assert report["confirmed"] == "market.price_update"
    assert report["held"] == ["market.price_update"]
    assert report["info"]["user"] == staff_user.get_username()
    assert report["info"]["client_id"] == report["client_id"]
    assert report["info"]["subscriptions"] == ["market.price_update"]
    assert report["filtered"] is True and report["known_types"] == len(EVENT_SCHEMAS)
