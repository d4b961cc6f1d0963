"""Text for a terminal: completions of random-weight models hold control bytes and stray code points."""
from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every non-printable character but newline and tab escaped (``\\x1b``, ``\\u200b``)."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in text)
