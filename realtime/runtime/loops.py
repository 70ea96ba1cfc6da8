"""One instance per event loop.

The fan-out, the publisher, the revalidator and the other process-wide helpers hold tasks and
connections that belong to the event loop they run on. Keeping one per loop rather than one per
process gives every test its own (each test runs its own loop) and lets an instance go with its
loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """Return a function giving the running loop's instance of `factory()`, made on first use."""
    instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def current() -> T:
        loop = asyncio.get_running_loop()
        instance = instances.get(loop)
        if instance is None:
            instance = instances[loop] = factory()
        return instance

    current.__doc__ = "Return the running event loop's instance (made on first use)."
    return current
