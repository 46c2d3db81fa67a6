"""The Llama-layer trace harness runs on a GPU machine with torch alone (no archsim)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run_in_shim(tmp_path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` beside the shim of validation/data/README.md: a bare ``validation``
    package over the harness (as on the GPU machine, where archsim is not installed)."""
    shim = tmp_path / "validation"
    shim.mkdir()
    (shim / "__init__.py").write_text("")
    (shim / "harness").symlink_to(REPO / "validation" / "harness")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )


def test_harness_imports_neither_archsim_nor_torch_and_documents_its_options(tmp_path):
    code = (
        "import sys\n"
        "import validation.harness.llama_layer as m\n"
        "assert not any(n == 'archsim' or n.startswith('archsim.') for n in sys.modules)\n"
        "assert 'torch' not in sys.modules\n"
        "assert m.LLAMA3_8B['n_kv_heads'] == 8 and m.LLAMA3_8B['ffn'] == 14336\n"
        "m.main(['--help'])\n"
    )
    run = _run_in_shim(tmp_path, code)
    assert run.returncode == 0, run.stderr
    for option in ("--out-dir", "--prompt", "--context", "--profiled-steps", "--sdpa-backend"):
        assert option in run.stdout


def test_layer_ops_harness_imports_neither_archsim_nor_torch_and_lists_unique_ops(tmp_path):
    code = (
        "import sys, json\n"
        "import validation.harness.layer_ops as m\n"
        "assert not any(n == 'archsim' or n.startswith('archsim.') for n in sys.modules)\n"
        "assert 'torch' not in sys.modules\n"
        "print(json.dumps(m.OPS))\n"
    )
    run = _run_in_shim(tmp_path, code)
    assert run.returncode == 0, run.stderr
    import json

    ops = json.loads(run.stdout)
    keys = [json.dumps(op, sort_keys=True) for op in ops]
    assert len(keys) == len(set(keys)), "an op shape is measured twice"
    assert {op["op"] for op in ops} == {
        "rms_norm",
        "silu_mul",
        "add",
        "rope",
        "swiglu_mlp",
        "bmm",
        "scaled_mm_fp8",
    }
