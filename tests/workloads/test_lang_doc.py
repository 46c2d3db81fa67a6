"""Every example of docs/cascade_language.md runs, and the reference names every function."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from archsim.errors import WorkloadError
from workloads import count, execute, load_cascade, parse_cascade
from workloads._ops import DTYPES, UNARY

DOC = Path(__file__).resolve().parents[2] / "docs" / "cascade_language.md"
_BLOCK = re.compile(r"^```([\w-]+)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    return [body for tag, body in _BLOCK.findall(DOC.read_text()) if tag == kind]


def _ids(kind: str) -> list[str]:
    return [f"{kind}{i}" for i in range(len(_blocks(kind)))]


def _random_inputs(c, rng) -> dict[str, np.ndarray]:
    sizes = c.rank_sizes()
    out = {}
    for name in c.inputs:
        spec = c.tensors[name]
        shape = tuple(sizes[r] for r in spec.ranks)
        out[name] = rng.random(shape) < 0.5 if spec.dtype == "bool" else rng.normal(size=shape)
    return out


def test_the_doc_has_examples_of_every_kind():
    assert len(_blocks("cascade")) >= 6
    assert len(_blocks("cascade-error")) >= 4
    assert len(_blocks("yaml")) == 1
    assert len(_blocks("python")) >= 3


@pytest.mark.parametrize("text", _blocks("cascade"), ids=_ids("cascade"))
def test_cascade_examples_parse_count_and_execute(text):
    c = parse_cascade(text)
    counts = count(c)
    out = execute(c, _random_inputs(c, np.random.default_rng(0)))
    assert set(out) == {e.name for e in c.einsums}
    assert counts.flops > 0


@pytest.mark.parametrize("text", _blocks("cascade-error"), ids=_ids("cascade-error"))
def test_error_examples_raise_the_error_they_name(text):
    words = text.splitlines()[0].removeprefix("# error:").strip()
    with pytest.raises(WorkloadError) as err:
        parse_cascade(text)
    assert words in str(err.value)


@pytest.mark.parametrize("text", _blocks("yaml"), ids=_ids("yaml"))
def test_yaml_example_loads(text, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    c = load_cascade(path)
    assert c.name == "attention-3pass"
    assert count(c).macs > 0


@pytest.mark.parametrize("code", _blocks("python"), ids=_ids("python"))
def test_python_examples_run(code):
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation


def test_the_reference_names_every_function_and_dtype():
    text = DOC.read_text()
    for name in [*UNARY, *DTYPES]:
        assert re.search(rf"[`| ]{name}[`| ]", text), name
