"""Where a command may write: never over one of its inputs, and over an existing file only when asked.

Every command and export runs :func:`check_outputs` before it writes anything: an output that is one of
the inputs (the same file after resolving symbolic links, or the same inode: a hard link) is refused
whatever the options, and an output that exists already is refused unless ``overwrite``. The files
themselves are then written with :func:`atomic_write_bytes` / :func:`atomic_write_text` (a temporary file
beside the target, synced, then renamed over it), so a reader never sees a half-written file and an
interrupted write leaves the old one. A writer that wants a file name (``torch.save``, ``np.savez``) writes
into :func:`atomic_path` instead. Temporary files are named ``.NAME.tmp-PID`` (plus ``suffix``), which
:mod:`kit.shards` sweeps from a score folder.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable, Iterator


class OutputError(ValueError):
    """An output path that would overwrite an input, or an existing file without ``overwrite``."""


def _identities(path) -> set:
    """What makes two paths the same file: the real path, and the device and inode when the file exists."""
    keys: set = {("path", os.path.realpath(path))}
    try:
        st = os.stat(path)
        keys.add(("inode", st.st_dev, st.st_ino))
    except OSError:
        pass
    return keys


def input_files(inputs: Iterable) -> list[tuple[str, Path]]:
    """``(name, file)`` for each input given as ``(name, path)``: a folder (a score folder) stands for every file
    in it; a set of real paths (a pool's images) is left to :func:`check_outputs`."""
    out = []
    for name, path in inputs:
        if path is None or isinstance(path, (set, frozenset)):
            continue
        path = Path(path)
        if path.is_dir():
            out.extend((name, p) for p in sorted(path.rglob("*")) if p.is_file())
        else:
            out.append((name, path))
    return out


def check_outputs(outputs: Iterable, inputs: Iterable = (), *, overwrite: bool = True,
                  hint: str = "--overwrite") -> None:
    """Raise :class:`OutputError` (a one-line message) before anything is written.

    ``outputs`` are the files a command will write; ``inputs`` are ``(name, path)`` pairs of what it reads: a
    file, a folder (for every file in it) or a set of real paths (a pool's images, compared without touching
    the disk). An output that is an input, or that another output names too, is refused; one that exists is
    refused unless ``overwrite`` (``hint`` names the option that allows it).
    """
    inputs = list(inputs)
    seen: dict = {}
    for name, path in input_files(inputs):
        for key in _identities(path):
            seen.setdefault(key, (name, path))
    real_sets = [(name, paths) for name, paths in inputs if isinstance(paths, (set, frozenset))]
    written: dict = {}
    for out in outputs:
        real = os.path.realpath(out)
        if real in written:
            raise OutputError(f"{out} and {written[real]} are the same file: two outputs of this command would "
                              "overwrite each other; write them to different paths")
        written[real] = out
        found = next((seen[key] for key in _identities(out) if key in seen), None)
        found = found or next(((name, real) for name, paths in real_sets if real in paths), None)
        if found is not None:
            raise OutputError(f"{out} is {found[0]} ({found[1]}), an input of this command: it would be "
                              "overwritten; write to another path")
        if not overwrite and os.path.lexists(out):
            raise OutputError(f"{out} exists already: give {hint} to replace it, or write to another path")


__all__ = ["OutputError", "check_outputs", "input_files"]


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without error the file is synced and
    renamed over ``path`` (atomically), otherwise removed. ``suffix`` ends the temporary name, for writers
    that add their own (``np.savez`` appends ``.npz`` to a name without it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (no newline translation)."""
    atomic_write_bytes(path, text.encode(encoding))
