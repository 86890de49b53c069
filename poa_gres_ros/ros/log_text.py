"""Instruction text in log lines: quoted, cut to a prefix plus its length when long.

A typed or spoken instruction can be thousands of characters (a pasted paragraph, a
transcript gone wrong); logging it whole floods the console and ``/rosout`` on every line that
names it. The full text still travels in every result message.
"""

from __future__ import annotations

LOG_PREFIX_CHARS = 80


def short_text(text: str, limit: int = LOG_PREFIX_CHARS) -> str:
    """``repr(text)`` when it has at most ``limit`` characters, else the repr of its first
    ``limit`` characters followed by ``... (N characters)``."""
    if len(text) <= limit:
        return repr(text)
    return f'{text[:limit]!r}... ({len(text)} characters)'
