"""The import contracts of .importlinter, checked by reading every module's imports (no import-linter
needed): the apps reach realtime only through realtime.api, realtime imports no app, market imports
nothing of trading and of portfolio only its models, and realtime's layers import only downwards.

It reads direct imports, function-level ones included; `lint-imports` also follows chains.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("market", "trading", "portfolio")
# realtime's layers, top to bottom; a layer may import its own package and those below it.
# wire and server share the bottom and are independent of each other.
LAYERS = [("connection",), ("bus",), ("delivery",), ("runtime",), ("wire", "server")]
# realtime's top-level modules that build on the layers (the consumer, the gateway's own features,
# the Django wiring): no layer imports them. The app's models and services are below them.
ABOVE_LAYERS = {
    "realtime.admin", "realtime.announcements", "realtime.api", "realtime.apps", "realtime.client",
    "realtime.consumers", "realtime.monitoring", "realtime.rest", "realtime.routing", "realtime.signals",
    "realtime.urls", "realtime.views",
}  # fmt: skip
# Imports the contracts let through, each with its reason in .importlinter. Each must still be
# there: once it is gone, its entry goes too.
ALLOWED = {
    ("realtime.server.daphne", "realtime.connection.drain")  # the adapter's protocol asks the drain
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """Return the modules `source` (the text of `module`) imports, relative ones resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from realtime import api` imports realtime.api: count the submodule when it is one.
            found += [f"{base}.{alias.name}" for alias in node.names] if _is_package(base) else [base]
    return found


def _is_package(dotted: str) -> bool:
    return (ROOT / dotted.replace(".", "/") / "__init__.py").is_file()


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "realtime":
        return None
    for level, packages in enumerate(LAYERS):
        if parts[1] in packages:
            return level
    return None


def violations(module: str, targets: list[str]) -> list[str]:
    """Return the contracts `module` breaks by importing `targets`, naming each import."""
    found = []
    for target in targets:
        if (module, target) in ALLOWED or (module, target.rsplit(".", 1)[0]) in ALLOWED:
            continue
        where = f"{module} imports {target}"
        if module.split(".")[0] in APPS and _within(target, "realtime") and not _within(target, "realtime.api"):
            found.append(f"{where}: apps import from realtime only realtime.api")
        if module.split(".")[0] in ("realtime", "core") and target.split(".")[0] in APPS:
            found.append(f"{where}: realtime and core import no app")
        if _within(module, "market") and (
            _within(target, "trading") or (_within(target, "portfolio") and not _within(target, "portfolio.models"))
        ):  # a tick reaches them through market.signals; the instrument (portfolio.models) is shared
            found.append(f"{where}: market imports nothing of trading, and of portfolio only its models")
        source, destination = _layer(module), _layer(target)
        if source is not None and _within(target, "realtime"):
            if destination is None and any(_within(target, top) for top in ABOVE_LAYERS):
                # realtime's top level (consumers, services, models...) builds on the layers
                found.append(f"{where}: a layer imports realtime's top level")
            elif destination is not None and destination < source:
                found.append(f"{where}: a lower layer imports a higher one")
            elif destination == source and module.split(".")[1] != target.split(".")[1]:
                found.append(f"{where}: wire and server are independent")
    return found


def project_modules():
    for package in ("realtime", "core", *APPS):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield module_name(path), path


def test_every_module_keeps_the_import_contracts():
    broken = []
    seen = set()
    for module, path in project_modules():
        targets = imported(module, path.read_text(), is_package=path.name == "__init__.py")
        broken += violations(module, targets)
        seen |= {(module, target) for target in targets}
    assert broken == [], "\n".join(broken)
    assert ALLOWED <= seen, f"allowed imports no longer made, drop them here and in .importlinter: {ALLOWED - seen}"


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("trading.services", "from realtime.delivery.dispatch import send_event_on_commit", "only realtime.api"),
        ("trading.services", "def f():\n    from realtime import bus\n", "only realtime.api"),
        ("realtime.connection.gate", "import market.models", "import no app"),
        ("market.feed", "from portfolio.services import x", "nothing of trading"),
        ("market.ticks", "from trading.models import Order", "nothing of trading"),
        (
            "realtime.delivery.fanout",
            "def f():\n    from realtime.bus.bridge import start_local_bridge\n",
            "lower layer",
        ),
        ("realtime.wire.events", "from realtime.runtime import metrics", "lower layer"),
        ("realtime.wire.protocol", "from realtime.server.checks import part_usable", "independent"),
        ("realtime.runtime.metrics", "from realtime.consumers import EventConsumer", "top level"),
    ],
)
def test_a_broken_contract_is_reported_with_the_import(module, source, broken):
    found = violations(module, imported(module, source))
    assert len(found) == 1 and broken in found[0] and found[0].startswith(f"{module} imports ")


def test_imports_within_the_rules_pass():
    assert violations("trading.commands", imported("trading.commands", "from realtime.api import command")) == []
    assert (
        violations("realtime.connection.socket", ["realtime.bus.admission", "realtime.wire.protocol", "core.times"])
        == []
    )
    assert violations("realtime.connection.gate", ["realtime.services", "realtime.models"]) == []
    assert violations("market.models", ["portfolio.models"]) == []
