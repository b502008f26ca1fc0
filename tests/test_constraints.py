"""The committed constraints: installs that do not drift (README: Installs that do not drift)."""

from __future__ import annotations

import re

from packaging.version import Version

from .helpers.paths import REPO

CONSTRAINTS = REPO / "constraints"


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (CONSTRAINTS / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            package, sep, version = line.partition("==")
            assert sep and version, f"{name}: not a pin: {line!r}"
            pins[re.sub(r"[-_.]+", "-", package.lower())] = version
    return pins


def test_celery_check_is_pinned_to_a_celery_its_provider_can_import() -> None:
    pins = _pins("celery-python3.11.txt")
    assert Version(pins["celery"]) < Version("5.7")  # providers-celery 3.26 fails on 5.7
    assert pins["apache-airflow"] == _pins("python3.11.txt")["apache-airflow"]
    assert "newsmon" not in pins
    script = (REPO / "docker" / "celery-check.sh").read_text(encoding="utf-8")
    assert "constraints=constraints/celery-python$pyver.txt" in script
    assert '"${pins[@]}" "${requirements[@]}"' in script


def test_the_dev_venv_and_the_image_use_the_dev_constraints() -> None:
    assert "elasticsearch" in _pins("python3.11.txt")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "CONSTRAINTS = constraints/python$(PYVER).txt" in makefile
    assert "-c $(CONSTRAINTS)" in makefile
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY --chown=airflow:0 constraints/python3.11.txt" in dockerfile
