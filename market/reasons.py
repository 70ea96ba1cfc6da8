"""An analysis's findings as machine codes with their figures, for clients to word in their language.

Every analysis result carries `reasons` beside its own fields: a list of findings, each
`{"code": ..., "params": {...}, "vote": +1 | 0 | -1 | None}`. The code names the finding
(`rsi_oversold`, `metric_negative_lower`, `sentiment_buy`, ...), the params hold the figures a text
needs, and the vote is the finding's part in the recommendation (None for the decision itself).
The desk words them from its translations (aktienanalyse/texts.py, `analysis_reason_<code>`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def analysis_reason(code: str, vote: int | None, **params: Any) -> dict[str, Any]:
    """Return one finding of an analysis: its code, its figures and its vote."""
    return {"code": code, "params": params, "vote": vote}


# Parameters that are words, not figures; every other parameter a stored result holds as a
# string (JSON keeps Decimals so) is a number.
TEXT_PARAMS = frozenset({"as_of", "source", "metric"})


def reason_restore(reason: dict[str, Any]) -> dict[str, Any]:
    """Return a stored finding with its figures as Decimals again."""
    params = {
        key: Decimal(value) if isinstance(value, str) and key not in TEXT_PARAMS else value
        for key, value in reason.get("params", {}).items()
    }
    return {**reason, "params": params}


def reasons_restore(result: dict[str, Any]) -> dict[str, Any]:
    """Return a stored result whose `reasons` (when it has them) carry Decimals again."""
    if "reasons" not in result:
        return result
    return {**result, "reasons": [reason_restore(reason) for reason in result["reasons"]]}
