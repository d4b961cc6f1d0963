"""Error-message help shared by every place that validates user-given keys (LlmArgs, SamplingParams,
the transforms registry)."""
from __future__ import annotations

import difflib
from typing import Iterable


def closest_key_hint(key: str, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the valid key closest to ``key``, else the list of valid keys."""
    valid = list(valid)
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if match:
        return f"; did you mean {match[0]!r}?"
    return f"; valid keys: {', '.join(sorted(valid))}"
