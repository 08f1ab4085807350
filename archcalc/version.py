"""archcalc's version: the installed distribution's, else pyproject.toml's in a source checkout."""

from __future__ import annotations


def version() -> tuple[str, bool]:
    """The version and whether it came from installed metadata (False: read from pyproject.toml,
    or 'unknown'); looked up only when asked, as metadata lookups cost start-up time."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("archcalc"), True
    except PackageNotFoundError:
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        match = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.MULTILINE) if pyproject.is_file() else None
        return (match[1] if match else "unknown"), False
