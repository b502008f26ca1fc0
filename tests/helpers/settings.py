"""Test settings changed in part."""

from __future__ import annotations

from dataclasses import replace

from newsmon.config import Settings


def with_fetch(settings: Settings, **changes: object) -> Settings:
    """Settings with some fetch settings changed."""
    return replace(settings, fetch=replace(settings.fetch, **changes))  # type: ignore[arg-type]
