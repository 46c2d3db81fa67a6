"""archsim sweep / pareto / demo from the command line."""

from __future__ import annotations

from archsim.cli import main
from dse import load


def test_sweep_then_pareto_prints_the_front_and_plots(real_spec_path, tmp_path, capsys):
    out = tmp_path / "store"
    assert (
        main(["sweep", str(real_spec_path), "--out", str(out), "--workers", "2", "--no-progress"])
        == 0
    )
    text = capsys.readouterr().out
    assert "36 points: 0 already stored, 36 computed (0 errors)" in text
    assert main(["sweep", str(real_spec_path), "--out", str(out), "--no-progress"]) == 0
    assert "36 already stored, 0 computed" in capsys.readouterr().out
    assert main(["sweep", str(real_spec_path), "--out", str(out), "--dry-run"]) == 0
    assert "real-small: 36 points, 36 already in" in capsys.readouterr().out
    png = tmp_path / "front.png"
    assert main(["pareto", str(out), "--x", "energy", "--y", "latency", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "Pareto front over energy_j × seconds" in text
    assert png.stat().st_size > 1000
    df = load(out)
    from dse import pareto

    front = pareto(df, "energy_j", "seconds")
    assert f": {len(front)} points" in text


def test_bad_spec_is_an_error_line_not_a_traceback(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\narch: fusemax\nworkload: mha\nsampler: {kind: lhs}\n")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "sampler.n" in err
    assert "needs n" in err


def test_pareto_of_a_missing_store_is_an_error(tmp_path, capsys):
    assert main(["pareto", str(tmp_path / "none")]) == 2
    assert "not a sweep store" in capsys.readouterr().err


def test_demo_says_where_its_files_are(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert f"plot:  {tmp_path / 'demo' / 'demo.png'}" in text
    assert f"trace: {tmp_path / 'demo' / 'fusemax_trace.json'}" in text
    assert (tmp_path / "demo" / "demo.png").is_file()


def test_unwritable_outputs_are_error_lines(tmp_path, capsys):
    from dse import SweepSpec, run_sweep
    from tests.dse.dse_toy import toy_evaluator

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    spec = SweepSpec.from_dict({"name": "w", "arch": "fusemax", "workload": "mha"})
    run_sweep(spec, tmp_path / "s", executor="serial", evaluator=toy_evaluator)
    spec_path = tmp_path / "w.yaml"
    spec_path.write_text("name: w\narch: fusemax\nworkload: {name: mha, params: {S: 256}}\n")
    store = str(tmp_path / "s")
    cases = [
        (["pareto", store, "--plot", str(blocker / "x.png")], "cannot write the plot"),
        (["pareto", store, "--plot", str(tmp_path / "x.nope")], "not supported"),
        (["demo", "--out", str(blocker)], "--out: cannot create the demo's output folder"),
        (["sweep", str(spec_path), "--out", str(blocker)], "cannot create the result store"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: "), err
        assert words in err
