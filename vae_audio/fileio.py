"""Atomic file writing shared by every writer in the package (audio, JSON, CSV, PNG, checkpoints).

An output is first written to a temporary file in the destination folder and then moved onto
the final name with ``os.replace`` (atomic on POSIX and Windows within one file system), so a
reader never sees a half-written file and a crash leaves the previous version intact. Paths in
``protect`` (typically the inputs of a command) are never written to. Also here: reading a
YAML file with one-line errors (:func:`read_yaml_file`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from vae_audio.errors import VaeAudioError

PathLike = str | os.PathLike


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (resolved paths, or the same inode)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist
        return False


def check_not_protected(path: PathLike, protect: Iterable[PathLike] = ()) -> None:
    """Raise ``VaeAudioError`` if ``path`` is one of the ``protect`` paths (e.g. an input)."""
    for p in protect:
        if same_file(path, p):
            raise VaeAudioError(
                f"refusing to write '{path}': it is an input ('{p}') and inputs are never "
                "overwritten; choose a different output path or folder"
            )


def temp_name_pattern(stem: str | None = None) -> re.Pattern:
    """The names :func:`atomic_write` gives its temporary files: ``.<stem>.<8 random
    characters of mkstemp>.tmp<suffix>`` (any stem, or only ``stem``)."""
    name = ".+" if stem is None else re.escape(stem)
    return re.compile(rf"\.{name}\.[a-z0-9_]{{8}}\.tmp(\.[^.]+)?")


def remove_stale_temps(folder: PathLike, stem: str | None = None) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` left in ``folder`` (not
    recursively; only those of ``stem`` when given) when its process was killed mid-write;
    return their paths.

    Call it only where no other process is writing those files at the time.
    """
    pattern = temp_name_pattern(stem)
    removed = []
    with contextlib.suppress(OSError):
        for path in Path(folder).iterdir():
            if pattern.fullmatch(path.name) and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def new_temp(path: PathLike, *, protect: Iterable[PathLike] = ()) -> Path:
    """Create and return an empty temporary file next to ``path`` for :func:`commit_temp`,
    named as :func:`temp_name_pattern` describes (same suffix as ``path``, so libraries that
    infer the format from the extension work). The parent folder is created if needed."""
    path = Path(path).expanduser()
    check_not_protected(path, protect)
    if path.is_dir():
        raise VaeAudioError(f"cannot write '{path}': it is a folder; give a file name")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaeAudioError(
            f"cannot create output folder '{parent}' ({exc.strerror or exc}); "
            "choose an output path in a writable folder"
        ) from exc
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as exc:
        raise VaeAudioError(
            f"cannot write '{path}': output folder '{parent}' is not writable "
            f"({exc.strerror or exc}); choose a writable folder or fix its permissions"
        ) from exc
    os.close(fd)
    return Path(tmp_name)


def commit_temp(tmp: Path, path: PathLike, *, protect: Iterable[PathLike] = ()) -> Path:
    """Move the finished temporary file ``tmp`` onto ``path`` (atomic, usual permissions)."""
    path = Path(path).expanduser()
    check_not_protected(path, protect)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600 files
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise VaeAudioError(
            f"cannot write '{path}' ({exc.strerror or exc}); "
            "check the permissions of the file and its folder"
        ) from exc
    return path


@contextlib.contextmanager
def atomic_write(path: PathLike, *, protect: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    The temporary name ends with the same suffix as ``path`` (``.wav``, ``.png``, ...) so
    libraries that infer the format from the extension work. The parent folder is created if
    needed. On any exception the temporary file is deleted and the exception propagates;
    ``path`` is left untouched.

    Usage::

        with atomic_write(out_path, protect=inputs) as tmp:
            torch.save(state, tmp)
    """
    tmp = new_temp(path, protect=protect)
    try:
        yield tmp
        commit_temp(tmp, path, protect=protect)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: PathLike, text: str, *, protect: Iterable[PathLike] = ()) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, protect=protect) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_yaml_file(path: Path, what: str):
    """The data of the YAML file ``path`` (``what`` names it in errors, e.g. ``"preset"``);
    the caller checks its type.

    Raises:
        VaeAudioError: the file cannot be read or is not valid YAML.
    """
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise VaeAudioError(
            f"cannot read {what} '{path}' ({exc.strerror}); check the path"
        ) from exc
    except yaml.YAMLError as exc:
        raise VaeAudioError(f"{what} '{path}' is not valid YAML ({exc}); fix its syntax") from exc
