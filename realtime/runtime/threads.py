"""Database work off the event loop: the handshake pool, the command lanes, the thread-sensitive thread.

`database_sync_to_async` runs every call on one thread per process by default. Handshakes and
commands share nothing on the database side that needs that thread: their reads and writes are
ordered by the database (a portfolio's row lock orders its orders), so handshakes get a pool and
commands lanes of their own, and a burst of one kind queues neither behind the other nor behind
the consumer's own reads on the thread-sensitive thread.

A connection opened in such a pool is closed in the context its queries ran in: asgiref runs the
call in a copy of the caller's context, and Django keeps connections per context, so what
`database_sync_to_async` closes after a call on a thread that is not the thread-sensitive one
need not be the connection the call opened, which would then stay checked out of the pool.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def closing_connections(func: Callable[P, R]) -> Callable[P, R]:
    """`func`, its database connection back to the pool (or closed) in the context it ran in."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def on_database_thread(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """An awaitable `func` on the thread-sensitive thread, its connection closed where it was opened.

    `database_sync_to_async` alone closes the connections of the thread's own context after the
    call, not the one `func` opened in asgiref's copy of the caller's context, which then stays
    checked out of the pool for the life of the process.
    """
    return database_sync_to_async(closing_connections(func))


def database_threads(name: str, count: int) -> ThreadPoolExecutor:
    """The pool of `count` threads named `name`, made at first use and kept for the process."""
    with _pools_lock:
        pool = _pools.get((name, count))
        if pool is None:
            pool = _pools[(name, count)] = ThreadPoolExecutor(max_workers=count, thread_name_prefix=name)
        return pool


def on_database_threads(func: Callable[P, R], *, name: str, count: Callable[[], int]) -> Callable[P, Awaitable[R]]:
    """An awaitable `func` that runs on the pool `name` of `count()` threads (read at each call,
    so a test's settings override takes effect)."""
    return _on_pool_of(func, lambda: (name, count()))


def _on_pool_of(func: Callable[P, R], pool: Callable[[], tuple[str, int]]) -> Callable[P, Awaitable[R]]:
    """An awaitable `func` that runs on the `database_threads` that `pool()` names at each call,
    its connection closed where it was opened; the runner of each pool is made once."""
    on_pool = closing_connections(func)
    runners: dict[tuple[str, int], Callable[P, Awaitable[R]]] = {}

    @functools.wraps(func)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        key = pool()
        run = runners.get(key)
        if run is None:
            run = runners[key] = database_sync_to_async(
                on_pool, thread_sensitive=False, executor=database_threads(*key)
            )
        return await run(*args, **kwargs)

    return call


# The lane (a key, the connection's client id) whose commands run one after the other.
_command_lane: ContextVar[str] = ContextVar("realtime_command_lane", default="")


def command_lane_set(key: str | None) -> None:
    """Run the database work of the commands started from here on the thread of lane `key`."""
    _command_lane.set(key or "")


def on_command_threads(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """An awaitable `func` that runs on its lane's command thread (REALTIME_COMMAND_THREADS in all).

    Each lane (a socket) has one thread, so one socket's commands change the database in the order
    they arrived, as when every command ran on the one thread-sensitive thread: a second
    `modify_order` never overtakes the first. Commands of different sockets run side by side, as
    they do when the sockets are on different gateway processes; the orders of one portfolio are
    still ordered by its row lock. Work that answers no command, such as the analysis a
    `start_analysis` started, goes `on_background_thread` instead, so it holds up no lane.
    """
    return _on_pool_of(func, _lane_pool)


def _lane_pool() -> tuple[str, int]:
    """The one-thread pool of the current command lane."""
    lane = zlib.crc32(_command_lane.get().encode()) % settings.REALTIME["COMMAND_THREADS"]
    return f"command-{lane}", 1


def on_background_thread(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """An awaitable `func` on the one background thread: work a command started but does not wait
    for (an analysis run), one after the other, holding up no socket's commands."""
    return on_database_threads(func, name="background", count=lambda: 1)
