"""Exponential backoff with jitter between attempts: a pure function, shared by both halves."""

from __future__ import annotations

import random

MAX_DELAY_SECONDS = 3600.0


def backoff_delay(base: float, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before the attempt after `attempt` (1-based) failed.

    Exponential (base, 2*base, 4*base, ...) capped at an hour, plus up to 25% jitter so
    jobs that failed together do not all come back together. Never shorter than the
    exponential step, so `retry_backoff` is a floor users can rely on.
    """
    if base <= 0:
        return 0.0
    # The exponent is capped so huge attempt counts cannot overflow a float.
    step = min(base * 2 ** min(max(attempt - 1, 0), 32), MAX_DELAY_SECONDS)
    return step * (1 + (rng or random).random() * 0.25)
