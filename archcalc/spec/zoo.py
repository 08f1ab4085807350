"""The built-in model zoo: finding a spec by name (`resnet18`) when no such file exists here."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from archcalc.errors import SpecError


def zoo_dirs() -> list[Path]:
    """Where the built-in specs live: the source tree's specs/, or the installed copy."""
    candidates = [
        Path(__file__).resolve().parents[2] / "specs",  # a source checkout or editable install
        Path(sys.prefix) / "share" / "archcalc" / "specs",  # pip install . (pyproject data-files)
    ]
    return [d for d in candidates if d.is_dir()]


def zoo_specs() -> dict[str, Path]:
    """Every built-in spec by name, the first directory winning."""
    found: dict[str, Path] = {}
    for directory in zoo_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def resolve(name: str) -> tuple[Path, bool]:
    """The file a spec argument means, and whether it is a built-in one.

    A path that exists wins; otherwise `resnet18` or `resnet18.yaml` names the zoo's spec.
    """
    path = Path(name)
    if path.exists():
        return path, False
    specs = zoo_specs()
    stem = path.name.removesuffix(".yaml")
    if path.parent != Path("."):
        raise SpecError(f"no such file: {name}")
    if stem in specs:
        return specs[stem], True
    near = difflib.get_close_matches(stem, list(specs), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(near)}?" if near else " (`archcalc zoo` lists the built-in specs)"
    raise SpecError(f"no such file: {name}, and no built-in spec of that name{hint}")
