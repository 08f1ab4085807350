"""Every output file archcalc writes: never over an input, never half-written.

A target is refused when it is one of the files being read (the same file by `os.path.samefile`,
or the same resolved name up to case, as on case-insensitive file systems). The text is written
to a temporary file in the target's directory and moved over the target with `os.replace`, which
is atomic on POSIX and Windows, so an error or an interrupt leaves the old file (or none) intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from archcalc.errors import OptionError

SPEC_SUFFIXES = (".yaml", ".yml")


def _same_file(target: Path, source: Path) -> bool:
    """The target names the source: the same file, or (not yet existing) the same path up to case."""
    if target.exists() and source.exists():
        return os.path.samefile(target, source)
    return os.path.normcase(os.path.realpath(target)).casefold() == os.path.normcase(os.path.realpath(source)).casefold()


def check_target(target: str, inputs: Iterable[str], option: str = "--output", suffixes: tuple[str, ...] = ()) -> str:
    """The target's suffix (lower case), once it is a writable file that is none of the inputs."""
    file = Path(target)
    suffix = file.suffix.lower()
    for source in inputs:
        if _same_file(file, Path(source)):
            raise OptionError(f"refusing to write {option} {target}: it is the spec file {source} being read; choose another name")
    if suffixes and suffix not in suffixes:
        raise OptionError(f"{option} must name a {' or '.join(suffixes)} file, got {target}")
    if suffix in SPEC_SUFFIXES and file.exists():
        raise OptionError(f"refusing to overwrite {target}: it looks like a spec")
    if file.is_dir():
        raise OptionError(f"cannot write {target}: it is a directory")
    folder = file.parent
    if not folder.is_dir():
        raise OptionError(f"cannot write {target}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise OptionError(f"cannot write {target}: permission denied")
    return suffix


def _new_file_mode(target: Path) -> int:
    """The mode the target would have had: its own if it exists, else 0o666 less the umask."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic(target: str, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write that replaces `target` only when the block finishes without an error."""
    path = Path(target)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OptionError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with (os.fdopen(descriptor, "wb") if binary else os.fdopen(descriptor, "w", encoding="utf-8", newline="")) as file:
            yield file
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException as exc:
        os.unlink(temporary)
        if isinstance(exc, OSError):
            raise OptionError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise


def write(target: str, inputs: Iterable[str], fill: Callable[[IO[Any]], None], option: str = "--output", suffixes: tuple[str, ...] = (), binary: bool = False) -> None:
    """Check the target, then write it atomically with `fill(file)`."""
    check_target(target, inputs, option, suffixes)
    with atomic(target, binary) as file:
        fill(file)

