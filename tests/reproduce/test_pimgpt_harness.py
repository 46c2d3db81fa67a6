"""The PIM-GPT decode harness (validation/harness/gpt_decode.py) as a dry run on CPU.

Needs torch and transformers (present on the GPU machine, absent from CI: then skipped).
The static-cache decode step that ``--graph`` captures must compute the Hugging Face model's
own logits, and the records must carry the fields the reproduction reads.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from validation.harness import gpt_decode  # noqa: E402 - after the skips

#: a 2-layer GPT-2 block, 64 wide, 4 heads: seconds on a CPU
TINY = (2, 64, 4)


def test_static_decode_step_equals_the_hugging_face_forward():
    model = gpt_decode._model(*TINY, context=32, device="cpu", dtype=torch.float32)
    step = gpt_decode.StaticDecodeStep(model, context=32)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, gpt_decode.VOCAB, (1, 31), generator=gen)
    token = torch.randint(0, gpt_decode.VOCAB, (1, 1), generator=gen)
    with torch.no_grad():
        got = gpt_decode.check_step(model, step, prompt, token)
        # the prefill's last logits are the model's too, and the cache holds the prompt's K/V
        ref = model(input_ids=prompt).logits[0, -1]
        assert torch.allclose(step.prefill(prompt)[0, -1], ref, atol=1e-5)
    assert got["graph_logits_rel_diff"] < 1e-5
    assert step.k[0].shape == (1, 4, 32, 16)
    assert float(step.k[0][:, :, 30].abs().sum()) > 0  # prompt positions filled


def test_cpu_dry_run_writes_the_records_the_reproduction_reads(tmp_path, monkeypatch):
    monkeypatch.setitem(gpt_decode.GPT_MODELS, "tiny", TINY)
    out = tmp_path / "dry.jsonl"
    argv = ["--out", str(out), "--device", "cpu", "--graph", "--context", "24", "--tokens", "2"]
    assert gpt_decode.main([*argv, "--models", "tiny"]) == 0
    device, rec = (json.loads(x) for x in out.read_text().splitlines())
    assert device["kind"] == "device"
    assert device["name"].startswith("cpu")
    assert "error" not in rec, rec
    assert (rec["kind"], rec["model"], rec["layers"], rec["d_model"]) == (
        "gpt_decode",
        "tiny",
        2,
        64,
    )
    assert rec["ms_per_token"] > 0
    assert rec["graph_ms_per_token"] > 0
    assert rec["graph_captured"] is False  # no CUDA graph on a CPU
    assert rec["graph_logits_rel_diff"] < 1e-5


def test_context_must_leave_a_prompt(tmp_path):
    with pytest.raises(SystemExit):
        gpt_decode.main(["--out", str(tmp_path / "x.jsonl"), "--context", "6", "--tokens", "2"])
