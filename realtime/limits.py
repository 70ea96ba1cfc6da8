"""Per-connection rate limiting: a token bucket."""

from __future__ import annotations

import time


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

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
