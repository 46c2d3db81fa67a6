"""Reading cascade files: UTF-8 text, or a clear error naming the file and the byte offset."""

from __future__ import annotations

from pathlib import Path

from archsim.errors import WorkloadError

__all__ = ["read_text"]


def read_text(path: str | Path, what: str = "cascade file") -> str:
    """The UTF-8 text of ``path``.

    Raises
    ------
    WorkloadError
        The file is missing or unreadable (the OS reason), or is not UTF-8 text (the offset
        and value of the first bad byte); the path is the file's.
    """
    p = Path(path)
    try:
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
