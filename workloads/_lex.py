"""Tokenizer of the cascade text notation.

Tokens: identifiers, numbers (``64``, ``0.125``, ``1e-3``), and the symbols
``[ ] ( ) , = : + - * / < <= > >= == != ->``. ``#`` starts a comment to the end of line.
Every token carries its 1-based column so that errors can say ``line L, col C``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archsim.errors import WorkloadError

__all__ = ["Token", "tokenize", "Where"]

_QUOTE = 160
"""Longest statement quoted whole in an error message (characters)."""

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<id>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<sym><=|>=|==|!=|->|[\[\](),=:+\-*/<>])"
    r")"
)


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``num``, ``id``, ``sym`` or ``end``; ``col`` is 1-based."""

    kind: str
    text: str
    col: int


@dataclass(frozen=True)
class Where:
    """Where a statement came from: a path prefix (``line 4`` or ``einsums[3]``) and its text."""

    path: str
    text: str

    def error(
        self, message: str, col: int | None = None, *, expected: object = None, got: object = None
    ) -> WorkloadError:
        """A WorkloadError at ``path, col`` quoting the statement."""
        loc = self.path if col is None else f"{self.path}, col {col}"
        text = self.text.strip()
        if len(text) > _QUOTE:  # a fuzzed 1 MB line is not quoted whole
            text = f"{text[: _QUOTE // 2]} ... {text[-_QUOTE // 2 :]}"
        return WorkloadError(f"{message} in `{text}`", path=loc, expected=expected, got=got)


def tokenize(text: str, where: Where) -> list[Token]:
    """Split one statement (comment already allowed) into tokens, ending with an ``end`` token.

    Raises
    ------
    WorkloadError
        On a character that starts no token.
    """
    body = text.split("#", 1)[0]
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos >= len(body):
            break
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise where.error(
                "unexpected character",
                pos + 1,
                expected="a name, number or operator",
                got=body[pos],
            )
        kind = m.lastgroup or "sym"
        start = m.start(kind)
        tokens.append(Token(kind, m.group(kind), start + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(body) + 1))
    return tokens
