"""Secrets generated once and kept in the instance folder, readable by the owner only."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create(folder: str, name: str, make: Callable[[], str]) -> str:
    """The value stored in `folder/name`, creating it with `make()` the first time.

    Several processes may start at once: each writes its own candidate file and links it
    into place; the first link wins and everyone reads the winner.
    """
    path = Path(folder) / name
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{name}.{secrets.token_hex(8)}")
    # 0o600: owner-only on POSIX; on Windows the instance folder's ACL applies.
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(make() + "\n")
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
    finally:
        candidate.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise RuntimeError(f"{path.name} in the instance folder is empty; delete it to generate a new one.")
    return value
