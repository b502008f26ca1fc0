"""Text from articles, rules and mail servers, made safe to show and to put in a header.

:func:`clean` makes one displayable line of any text; :func:`check_address` and
:func:`parse_sender` accept only bare ASCII addresses, so no value can add a header or a
recipient (see docs/mail.md).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["check_address", "clean", "is_control", "is_control_or_space", "parse_sender"]

# RFC 5321/5322 dot-atom addresses, ASCII only: no display names, quotes, comments or groups.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})*)")

# Unpaired bidi embeddings/overrides/isolates could reorder the trusted text around them.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs") or char in "\u2028\u2029"


def is_control_or_space(char: str) -> bool:
    return is_control(char) or char.isspace()


def clean(text: str, limit: int | None = None, *, strip: bool = True) -> str:
    """One line of displayable text: control characters and line breaks become spaces,
    whitespace runs collapse, lone surrogates become U+FFFD, bidi overrides go."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.translate(_BIDI_CONTROLS)
    text = "".join(" " if is_control(c) else c for c in text)
    text = re.sub(r"\s+", " ", text)
    if strip:
        text = text.strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def check_address(value: str) -> str:
    """``value`` if it is one bare ASCII address (``local@domain``), else ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"not an email address: {value!r}")
    if len(value) > 254 or not _ADDRESS.fullmatch(value) or len(value.partition("@")[0]) > 64:
        raise ValueError(f"not a single bare email address (local@domain): {value!r}")
    return value


def parse_sender(value: str) -> tuple[str, str]:
    """Split a From setting ``addr`` or ``Display Name <addr>`` into (name, address)."""
    if any(is_control(c) for c in value):
        raise ValueError("must not contain control characters or line breaks")
    value = value.strip()
    name, address = "", value
    if match := re.fullmatch(r"([^<>]*?)\s*<([^<>]*)>", value):
        name, address = match.group(1).strip(), match.group(2).strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].strip()
        if any(c in name for c in '"\\'):
            raise ValueError("the display name must not contain quotes or backslashes")
    if not _ADDRESS.fullmatch(address) or len(address) > 254:
        raise ValueError("must be an email address, optionally as 'Name <local@domain>'")
    return name, address
