"""Help pages of the ``archsim`` sub-commands: examples and generated lists of choices.

Every sub-command ends its ``--help`` with an ``examples:`` section (:func:`examples`) and,
where it takes names from a registry (dataflows, knobs, workloads, mappers), with those
names listed from the registry itself, so the help cannot go stale. A description or epilog
may be a callable (:class:`HelpFormatter` calls it when the help is printed): listing the
registries imports the packages that fill them, which only ``--help`` should pay for.

This module imports nothing beyond the standard library; the ``*_table`` functions import
their registries when called.
"""

from __future__ import annotations

import argparse
import re
import shlex
import textwrap
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "HelpFormatter",
    "LazyText",
    "Text",
    "dataflow_table",
    "examples",
    "examples_in",
    "mapper_table",
    "plain",
    "sections",
    "table",
    "workload_table",
]

#: a description or epilog: text, or a function giving it when the help is printed
Text = str | Callable[[], str]

_WIDTH = 100


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps the plain paragraphs of descriptions and epilogs but keeps blocks that are laid
    out (a heading line ending in ``:``, or indented lines: examples, tables) as written, and
    calls a description or epilog given as a function (see :data:`Text`)."""

    def add_text(self, text: str | Callable[[], str] | None) -> None:
        if callable(text):
            text = text()
        super().add_text(text)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.strip("\n").split("\n\n"):
            lines = block.splitlines()
            laid_out = lines[0].rstrip().endswith(":") or any(ln.startswith(" ") for ln in lines)
            if laid_out:
                blocks.append("\n".join(indent + ln for ln in lines))
            else:
                blocks.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(blocks) + "\n"


def examples(*commands: str, note: str | None = None) -> str:
    """An ``examples:`` section: one command per line (a long one continued on the next with a
    backslash, as a shell reads it), each runnable from the repository root.

    ``note`` (optional) follows the commands as a plain paragraph.
    """
    lines = ["examples:", *("  " + _wrap_command(c) for c in commands)]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _wrap_command(command: str, width: int = _WIDTH - 4) -> str:
    """``command`` on one line, or continued (backslash, newline, indent) before an option
    when longer than ``width``; an option stays with its values."""
    groups: list[str] = []
    for word in command.split(" "):
        if word.startswith("--") or not groups:
            groups.append(word)
        else:
            groups[-1] += " " + word
    lines = [groups[0]]
    for g in groups[1:]:
        if len(lines[-1]) + 1 + len(g) <= width - (4 if len(lines) > 1 else 0):
            lines[-1] += " " + g
        else:
            lines.append(g)
    return " \\\n      ".join(lines)


class LazyText(str):
    """A help text computed when it is printed: a ``str`` (empty) to argparse and to type
    checkers, and callable, so :class:`HelpFormatter` calls it for the real text."""

    _fn: Callable[[], str]

    def __new__(cls, fn: Callable[[], str]) -> LazyText:
        obj = super().__new__(cls, "")
        obj._fn = fn
        return obj

    def __call__(self) -> str:
        return self._fn()


def sections(*parts: Text) -> LazyText:
    """An epilog made of ``parts`` (texts or functions), joined by blank lines when printed."""
    return LazyText(lambda: "\n\n".join(p() if callable(p) else p for p in parts))


def examples_in(help_text: str) -> list[list[str]]:
    """The example commands of a help page, each split into words (without ``archsim``).

    Reads the lines indented under ``examples:`` up to the first blank line (a line ending in
    a backslash continues on the next); the tests parse each with the real parser.
    """
    out: list[list[str]] = []
    inside = False
    pending = ""
    for line in help_text.splitlines():
        if line.strip() == "examples:":
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            if line.rstrip().endswith("\\"):  # a command continued on the next line
                pending += line.rstrip()[:-1] + " "
                continue
            words = shlex.split(pending + line)
            pending = ""
            if words and words[0] == "archsim":
                out.append(words[1:])
    return out


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """First paragraph of a docstring on one line, without reST markup (``x``, :func:`f`)."""
    if not doc:
        return ""
    first = doc.strip().split("\n\n", 1)[0]
    text = " ".join(first.split())
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "").replace("**", "").replace("`", "")


def table(rows: Iterable[tuple[str, str]], indent: int = 2) -> list[str]:
    """``name  text`` rows, names padded to one column, long texts wrapped under the text."""
    rows = list(rows)
    width = max((len(n) for n, _t in rows), default=0)
    out: list[str] = []
    for name, text in rows:
        head = " " * indent + name.ljust(width) + "  "
        wrapped = textwrap.wrap(text, _WIDTH - len(head)) or [""]
        out.append(head + wrapped[0])
        out += [" " * len(head) + w for w in wrapped[1:]]
    return out


def _probe_knobs(fn: Callable[..., object], arch: object) -> list[str] | None:
    """The knobs a dataflow takes, as it reports them when given one it does not know.

    A dataflow refuses an unknown knob with a :class:`archsim.errors.MappingError` whose
    ``path`` is ``knobs.NAME`` (the contract of :mod:`mappings._registry`); every built-in one
    checks its knobs before it reads the workload and lists the knobs it takes in
    ``expected``. None when a dataflow answers otherwise (the help then says where to look).
    The registry does not declare knobs; once it does, read them from there instead.
    """
    from archsim.errors import MappingError

    probe = "__help_probe__"
    try:
        fn(None, arch, {probe: 1})
    except MappingError as exc:
        if exc.path != f"knobs.{probe}":
            return None
        expected = exc.expected
        if isinstance(expected, str):  # "one of ['a', 'b'] for NAME" or "a | b"
            if "[" in expected:
                return re.findall(r"'([^']+)'", expected.split("]", 1)[0])
            return [k.strip() for k in expected.split("|") if k.strip()]
        if isinstance(expected, Iterable):
            return [str(k) for k in expected]
        return None
    except Exception:  # noqa: BLE001 - a dataflow that reads the workload first: not listed
        return None
    return None


def _presets_by_kind() -> dict[str, list[object]]:
    from archsim.spec import list_presets, load_arch

    kinds: dict[str, list[object]] = {}
    for name in list_presets():
        arch = load_arch(name)
        kinds.setdefault(arch.kind, []).append(arch)
    return kinds


def dataflow_table() -> str:
    """Every registered dataflow (summary, knobs) and, per architecture kind, the presets of
    that kind and the order in which ``--dataflow auto`` tries dataflows there."""
    from mappings._api import auto_candidates
    from mappings._registry import get_dataflow, list_dataflows

    kinds = _presets_by_kind()
    rows = []
    for name in list_dataflows():
        fn = get_dataflow(name)
        summary = plain(fn.__doc__)
        knobs, by_kind = _knobs_text(fn, kinds)
        if by_kind or "knob" not in summary.lower():  # else its docstring lists them
            summary += f" Knobs{' by architecture kind' if by_kind else ''}: {knobs}."
        rows.append((name, summary))
    lines = ["dataflows (--dataflow NAME; --knob K=V sets one of its knobs):", *table(rows)]
    lines += [
        "",
        "--dataflow auto (the default) takes the first, in this order, that maps the cascade:",
    ]
    orders: dict[tuple[str, ...], list[str]] = {}
    for _kind, archs in sorted(kinds.items()):
        for arch in archs:
            order = tuple(auto_candidates(arch))
            orders.setdefault(order, []).append(f"{arch.name}")  # type: ignore[attr-defined]
    auto = [(", ".join(presets), " > ".join(order)) for order, presets in orders.items()]
    lines += table(auto)
    return "\n".join(lines)


def _knobs_text(fn: Callable[..., object], kinds: dict[str, list[object]]) -> tuple[str, bool]:
    """The knobs of dataflow ``fn``, and whether they differ by architecture kind."""
    alone = _probe_knobs(fn, None)
    if alone is not None:
        return ", ".join(alone) or "none", False
    # a recipe that reads the architecture first (gemm hands a GPU to gpu_gemm)
    per_kind = {kind: _probe_knobs(fn, archs[0]) for kind, archs in sorted(kinds.items())}
    got = {k: v for k, v in per_kind.items() if v is not None}
    if not got:
        return "listed by the error an unknown knob gives", False
    if len({tuple(v) for v in got.values()}) == 1:
        return ", ".join(next(iter(got.values()))) or "none", False
    return "; ".join(f"{k}: {', '.join(v) or 'none'}" for k, v in got.items()), True


def workload_table(
    title: str = "workloads (--workload NAME; --set K=V overrides a default):",
) -> str:
    """Every library workload: summary, parameters with defaults, and aliases."""
    from workloads.library import list_workloads
    from workloads.library._registry import get_def

    rows = []
    for name in list_workloads():
        d = get_def(name)
        params = " ".join(
            f"{p.name}={'derived' if p.default is None else p.default}" for p in d.params
        )
        alias = "; ".join(f"{a} sets {','.join(ks)}" for a, ks in d.aliases.items())
        text = f"{plain(d.summary)} [{params}]" + (f" ({alias})" if alias else "")
        rows.append((name, text))
    note = textwrap.wrap(
        "or a cascade file: .ein text or .yaml (the language: docs/cascade_language.md). "
        "archsim workload show NAME --set K=V prints a workload's counts at those values.",
        _WIDTH - 2,
    )
    return "\n".join([title, *table(rows), *("  " + n for n in note)])


def mapper_table() -> str:
    """Every registered mapper with its docstring's first line."""
    from mappings._mappers import get_mapper, list_mappers

    rows = [
        (name, re.sub(r"\s*\(see module doc\)", "", plain(get_mapper(name).__doc__)))
        for name in list_mappers()
    ]
    return "\n".join(["mappers (--mapper NAME):", *table(rows)])


def commands_of(parser: argparse.ArgumentParser) -> Sequence[str]:
    """Names of the sub-commands of ``parser`` (empty when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []
