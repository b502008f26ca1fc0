"""Running the ``newsmon`` command as a user runs it: a subprocess of this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from .paths import REPO


def newsmon(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``newsmon ARGS`` from the repository root; stdout and stderr captured unless given."""
    options: dict[str, Any] = {"capture_output": True}
    if "stdout" in kwargs or "stderr" in kwargs:
        options = {}
    options.update(kwargs)
    return subprocess.run(
        [sys.executable, "-m", "newsmon.cli", *args],
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
        **options,
    )
