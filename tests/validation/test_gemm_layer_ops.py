"""``validation.layer_ops_records``: the layer-op GEMMs (fp8 ``_scaled_mm``, ``bmm``) as
``gemm`` records that ``archsim validate`` predicts."""

import json
from pathlib import Path

from validation.layer_ops_records import main, to_validate_records

DATA = Path(__file__).resolve().parents[2] / "validation" / "data" / "h200_layer_ops.jsonl"


def _lines():
    return DATA.read_text().splitlines()


def test_bmm_ops_become_batched_gemm_records_only_when_asked():
    src = _lines()
    n_fp8 = sum('"scaled_mm_fp8"' in line for line in src)
    n_bmm = sum('"op": "bmm"' in line for line in src)
    assert n_bmm == 4
    assert len(list(to_validate_records(src))) == 1 + n_fp8
    recs = list(to_validate_records(src, bmm=True))
    assert len(recs) == 1 + n_fp8 + n_bmm
    bmm = [r for r in recs if "batch" in r]
    # torch.bmm(a[b, m, k], c[b, k, n]) -> C[m, n] = A[m, k] @ B[k, n], b times
    first = json.loads(next(line for line in src if '"op": "bmm"' in line))
    assert (bmm[0]["M"], bmm[0]["N"], bmm[0]["K"], bmm[0]["batch"]) == (
        first["m"],
        first["n"],
        first["k"],
        first["b"],
    )
    assert bmm[0]["ms"] == first["ms"]
    assert bmm[0]["dtype"] == "bf16"


def test_batched_gemm_records_validate(tmp_path, capsys):
    from archsim.cli import main as cli

    assert main([str(DATA), "--bmm"]) == 0
    f = tmp_path / "ops.jsonl"
    f.write_text(capsys.readouterr().out)
    out = tmp_path / "pred.json"
    assert cli(["validate", str(f), "--arch", "h200", "--quiet", "--json", str(out)]) == 0
    preds = [p for p in json.loads(out.read_text())["records"] if "batch" in p]
    assert len(preds) == 4
    # batched GEMMs (32 heads of QK^T / PV, 256 single-row GEMVs, 8 square GEMMs) within 10%
    assert all(abs(p["pred_ms"] / p["ms"] - 1) < 0.10 for p in preds), preds


def test_usage_error_without_a_file():
    assert main(["--bmm"]) == 2
