"""Reading cascade files: UTF-8 text, or a clear error naming the file and the byte offset."""

from __future__ import annotations

from pathlib import Path

from archsim.errors import WorkloadError

__all__ = ["read_text", "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 64 * 2**20
"""Largest cascade file read (bytes); the library's largest is a few kB."""


def read_text(path: str | Path, what: str = "cascade file") -> str:
    """The UTF-8 text of ``path``.

    Raises
    ------
    WorkloadError
        The file is missing, unreadable (the OS reason) or larger than ``MAX_FILE_BYTES``, or
        is not UTF-8 text (the offset and value of the first bad byte); the path is the
        file's.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WorkloadError(
                f"{what} too large",
                path=str(p),
                expected=f"at most {MAX_FILE_BYTES} bytes",
                got=f"{size} bytes",
            )
        data = p.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WorkloadError(
            f"cannot read {what}", path=str(p), expected="a readable file", got=reason
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkloadError(
            f"{what} is not UTF-8 text",
            path=str(p),
            expected="UTF-8 text",
            got=f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}",
        ) from None
