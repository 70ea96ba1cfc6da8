pytest_plugins = [
    "tests.fixtures.users",
    "tests.fixtures.ws",
    "tests.fixtures.servers",
    "tests.fixtures.ops",
    "tests.fixtures.trading",
    "tests.fixtures.market",
    "tests.fixtures.bus",
]
