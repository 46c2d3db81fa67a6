"""Output paths checked before a long run, so that a bad one fails in a second, not after it.

Both raise the ``OSError`` that writing would raise (``archsim.cli.main`` prints it as one
``error:`` line naming the path).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["check_output_dir", "check_output_file"]


def check_output_file(path: str | Path) -> None:
    """A file the command will write: its folder must exist and be a folder."""
    parent = Path(path).parent
    if not parent.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(parent))
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))


def check_output_dir(path: str | Path) -> None:
    """A folder the command will create if missing: no part of it may be a file."""
    p = Path(path)
    for part in (p, *p.parents):
        if part.exists():
            if not part.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(part))
            return
