"""Turns a request's generated token ids into text pieces, and applies ``stop`` strings.

Text is always decoded from *all* generated ids (decoding token by token breaks multi-byte
characters and word-piece spacing); the part already sent is subtracted. A tail that could still
become a stop string, or ends in an incomplete UTF-8 character (decoded as U+FFFD), is held back
until the next tokens decide it. When a stop string appears, the text is cut just before it (the
stop string itself is not returned, as in the OpenAI API) and the request counts as stopped.
"""
from __future__ import annotations

from typing import Any, List, Sequence

_INCOMPLETE_CHARACTER = "\ufffd"


class IncrementalDetokenizer:
    """Incremental text of one request.

    Args:
        tokenizer: anything with ``decode(ids, skip_special_tokens=True) -> str``.
        stop: stop strings (may be empty).
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str] = ()):
        self._tokenizer = tokenizer
        self._stop = [s for s in stop if s]
        self._hold_back = max((len(s) - 1 for s in self._stop), default=0)
        self._token_ids: List[int] = []
        self._sent = 0
        self.text = ""
        self.stopped = False

    @property
    def num_tokens(self) -> int:
        return len(self._token_ids)

    def add(self, new_token_ids: Sequence[int], finished: bool) -> str:
        """Take the next generated ids; return the text that can be sent now ("" if none).

        After a stop string was found (``stopped``) later tokens are ignored.
        With ``finished`` everything still held back is released.
        """
        if self.stopped:
            return ""
        self._token_ids.extend(new_token_ids)
        self.text = self._tokenizer.decode(self._token_ids, skip_special_tokens=True)
        cut = self._first_stop(self._sent)
        if cut is not None:
            self.text = self.text[:cut]
            self.stopped = True
            return self._release(cut)
        if finished:
            return self._release(len(self.text))
        safe_end = len(self.text) - self._hold_back
        while safe_end > self._sent and self.text[safe_end - 1] == _INCOMPLETE_CHARACTER:
            safe_end -= 1
        return self._release(safe_end)

    def _first_stop(self, start: int) -> "int | None":
        """Index of the earliest stop string that may overlap text not yet sent."""
        begin = max(0, start - self._hold_back)
        found = [i for i in (self.text.find(s, begin) for s in self._stop) if i >= 0]
        return min(found) if found else None

    def _release(self, end: int) -> str:
        if end <= self._sent:
            return ""
        piece = self.text[self._sent:end]
        self._sent = end
        return piece
