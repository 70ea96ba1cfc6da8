"""Per-connection rate limiting: token buckets for client messages and for replayed frames."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from realtime.runtime.loops import per_loop
from realtime.wire.protocol import CloseCode, ErrorCode, ProtocolError


class TokenBucket:
    """Allow `rate` messages a second on average and bursts of up to `burst`."""

    def __init__(self, *, rate: float, burst: float, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    @property
    def rested(self) -> bool:
        """True when the bucket is (nearly) full again: the sender has kept to the rate."""
        return self._tokens >= self.burst - 1

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def available(self) -> float:
        """Return the tokens there are now."""
        self._refill()
        return self._tokens

    def spend(self, count: float) -> None:
        """Take `count` tokens, into debt if there are fewer: later work then waits until it is paid."""
        self._refill()
        self._tokens -= count


# The replay buckets of the users of this process, one per user for the life of the process:
# only staff may connect, so there are as many as staff accounts.
_user_replay_buckets: Callable[[], dict[int, TokenBucket]] = per_loop(dict)


class ReplayBudget:
    """The frames one connection may be sent from the history: its own bucket and its user's.

    Each allows `per_minute` frames a minute with bursts of as many; the user's bucket is shared
    by all the user's connections on this process. A replay that needs more than both hold is
    refused whole (the client reloads), never cut short, which would leave a gap.
    """

    def __init__(self, *, user_id: int, per_minute: int, per_user_per_minute: int, clock=time.monotonic):
        self.own = TokenBucket(rate=per_minute / 60, burst=per_minute, clock=clock)
        buckets = _user_replay_buckets()
        user = buckets.get(user_id)
        if user is None or user.burst != per_user_per_minute:
            user = buckets[user_id] = TokenBucket(rate=per_user_per_minute / 60, burst=per_user_per_minute, clock=clock)
        self.user = user

    def allowance(self) -> int:
        """Return how many frames a replay may send now."""
        return max(0, int(min(self.own.available(), self.user.available())))

    def spend(self, frames: int) -> None:
        self.own.spend(frames)
        self.user.spend(frames)


# One replay at a time per user and process: the turns below, kept while someone holds or waits.
_replay_turns: Callable[[], weakref.WeakValueDictionary[int, asyncio.Lock]] = per_loop(weakref.WeakValueDictionary)


def replay_turn(user_id: int) -> asyncio.Lock:
    """Return the lock a user's replays take turns on in this process.

    A replay sends its frames in slices with the event loop's other work in between; several
    sockets of one user replaying at once would still fill every turn of the loop with their
    slices, and other users' commands would wait behind all of them. Taking turns, a user's
    replays cost the others at most one slice per turn, however many sockets replay.
    """
    turns = _replay_turns()
    lock = turns.get(user_id)
    if lock is None:
        lock = turns[user_id] = asyncio.Lock()
    return lock


class MessageRate:
    """The message rate of one connection: a token bucket whose first refusal each second is
    answered with `rate_limited`, and a flood that goes on past `RATE_LIMIT_CLOSE_AFTER` refused
    messages is closed."""

    def __init__(self, connection: Any, config: dict[str, Any]):
        self.connection = connection
        self.config = config
        self.bucket = TokenBucket(rate=config["RATE_LIMIT_PER_SECOND"], burst=config["RATE_LIMIT_BURST"])
        self.strikes = 0
        self.warned_at = 0.0

    def allows(self) -> bool:
        """Take a token for one message; False (after answering or closing) when there is none."""
        if self.bucket.take():
            if self.bucket.rested:  # the flood is over: forget it
                self.strikes = 0
            return True
        self.strikes += 1
        if self.strikes >= self.config["RATE_LIMIT_CLOSE_AFTER"]:
            self.connection.end(CloseCode.RATE_LIMITED, "rate limit exceeded repeatedly")
            return False
        now = self.connection.loop.time()
        if now - self.warned_at >= 1:
            self.warned_at = now
            rate = self.config["RATE_LIMIT_PER_SECOND"]
            self.connection.send_error(
                ProtocolError(
                    ErrorCode.RATE_LIMITED,
                    f"Too many messages: at most {rate} a second; messages over the limit are dropped.",
                    limit=rate,
                )
            )
        return False
