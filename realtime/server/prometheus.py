"""Many equal observations of a prometheus_client histogram in one step."""

from __future__ import annotations

import bisect
from typing import Any

from .checks import log_fallback, part_usable


def observe_many(histogram: Any, value: float, count: int) -> None:
    """Record `count` observations of the same `value` in a histogram child.

    prometheus_client has no call for that; its histogram child keeps a sum and one counter per
    bucket (non-cumulative, for the first bound not below the value), which this adds to. Where
    those names are missing (`checks.py`) it makes `count` plain observations and logs so once.
    """
    if not part_usable("metrics"):
        log_fallback("metrics", "names it needs are missing, see manage.py check")
        for _ in range(count):
            histogram.observe(value)
        return
    histogram._sum.inc(value * count)
    histogram._buckets[bisect.bisect_left(histogram._upper_bounds, value)].inc(count)
