"""`archsim validate --jobs N`: records predicted on a process pool give the in-process report."""

import json
import os

import pytest

import validation._report as report_mod
from archsim.cli import main
from archsim.errors import MappingError
from validation import load_measurements, validate_file
from validation._report import compare_records, cost_hint

from .test_records_cli import ATTN, DECODE, GEMM

SMALL_ATTN = {**ATTN, "B": 1, "Hq": 8, "Hkv": 8, "Sq": 2048, "Skv": 2048, "ms": 0.2}
RECORDS = [
    {"kind": "device", "name": "H100", "power_limit_w": 700},
    GEMM,
    SMALL_ATTN,  # causal: ragged phases, simulated slot by slot
    {**SMALL_ATTN, "causal": False, "ms": 0.3},
    DECODE,
    {**DECODE, "pass_": "bwd"},  # UnsupportedRecord raised while predicting (in a worker)
    {**ATTN, "backend": "math"},  # unknown backend
    "{not json",
    {**GEMM, "M": 1024, "N": 512, "K": 2048, "ms": 0.01},
]


def _write(tmp_path, records, name="m.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return p


@pytest.mark.parametrize("engine", ["analytic", "event"])
def test_pool_report_equals_in_process_report(tmp_path, engine):
    mset = load_measurements(_write(tmp_path, RECORDS))
    from archsim.gpu import gpu_model

    serial = compare_records(mset, gpu_model("h100"), engine=engine, jobs=1)
    pooled = compare_records(mset, gpu_model("h100"), engine=engine, jobs=3)
    assert len(serial.frame) == 5
    assert list(pooled.frame["line"]) == list(serial.frame["line"])  # file order
    assert pooled.frame.equals(serial.frame)  # bit for bit, every column
    assert pooled.skipped == serial.skipped
    assert {s.line for s in serial.skipped} == {6, 7, 8}
    by_line = {s.line: s for s in pooled.skipped}
    assert "backward" in by_line[6].reason  # the UnsupportedRecord's own reason
    assert json.dumps(pooled.records, default=str) == json.dumps(serial.records, default=str)


def test_pool_predicts_in_worker_processes(tmp_path, monkeypatch):
    """jobs > 1 really runs the records elsewhere (forked workers see this patch)."""
    seen = tmp_path / "pids"
    real = report_mod._outcome

    def spy(*args):  # noqa: ANN002, ANN202 - the patched helper's own signature
        with open(seen, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(*args)

    monkeypatch.setattr(report_mod, "_outcome", spy)
    rep = validate_file(_write(tmp_path, RECORDS), "h100", jobs=2)
    pids = {int(x) for x in seen.read_text().split()}
    assert len(rep.frame) == 5
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


def test_cli_jobs_gives_the_same_json(tmp_path, capsys):
    p = _write(tmp_path, RECORDS)
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"pred{jobs}.json"
        assert (
            main(["validate", str(p), "--engine", "event", "--jobs", jobs, "--json", str(out)]) == 0
        )
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    text = capsys.readouterr().out
    assert text.count("validated: 5 records; skipped: 3 records") == 2


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_cli_rejects_bad_jobs(tmp_path, capsys, bad):
    with pytest.raises(SystemExit):
        main(["validate", str(_write(tmp_path, RECORDS)), "--jobs", bad])
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_api_rejects_bad_jobs(tmp_path, bad):
    with pytest.raises(MappingError, match="jobs"):
        validate_file(_write(tmp_path, RECORDS), "h100", jobs=bad)


def test_cost_hint_puts_causal_attention_first():
    assert cost_hint(SMALL_ATTN) > cost_hint({**SMALL_ATTN, "causal": False})
    assert cost_hint({**SMALL_ATTN, "causal": False}) > cost_hint(GEMM) == 0.0
    assert cost_hint(DECODE) == 0.0
    assert cost_hint({**SMALL_ATTN, "Sq": 4096, "Skv": 4096}) > cost_hint(SMALL_ATTN)
    assert cost_hint({"kind": "attn", "B": "x"}) == 0.0  # unparsable: cheap, never raises
