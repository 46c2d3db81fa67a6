"""Bounds on sizes, parameters, nesting and input files (``workloads._limits``).

Each test is one cause a fuzz run over malformed inputs found (issue 15, "What fuzzing
found"): the input must be refused with a WorkloadError naming the parameter or field, never
an OverflowError, RecursionError, ZeroDivisionError, UnicodeDecodeError or a huge allocation.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from archsim.cli import main
from archsim.errors import WorkloadError
from workloads import (
    MAX_EXTENT,
    MAX_NESTING,
    MAX_POINTS,
    count,
    get_workload,
    iteration_points,
    load_cascade,
    parse_cascade,
)
from workloads.library import parse_set_options

ROOT = Path(__file__).resolve().parents[2]
GEMM = "tensor A[m,k]\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n"


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


# --- rank extents and iteration spaces ---------------------------------------------------
def test_bounds_are_the_documented_ones():
    assert (MAX_EXTENT, MAX_POINTS, MAX_NESTING) == (2**40, 2**62, 64)


def test_an_extent_up_to_2_pow_40_is_accepted_and_one_more_is_refused_naming_it():
    c = parse_cascade(GEMM, params={"M": 2**40, "K": 1, "N": 1})
    assert c.rank_sizes()["m"] == 2**40
    with pytest.raises(WorkloadError, match=r"param M: parameter too large.*2\*\*40"):
        parse_cascade(GEMM, params={"M": 2**40 + 1, "K": 1, "N": 1})


def test_an_iteration_space_past_2_pow_62_is_refused_naming_every_extent():
    with pytest.raises(WorkloadError, match="iteration space too large") as exc:
        parse_cascade(GEMM, params={"M": 2**40, "K": 2**20, "N": 2**3})
    assert "Einsum C" in str(exc.value)
    for extent in ("M=1099511627776", "K=1048576", "N=8"):
        assert extent in str(exc.value)
    assert parse_cascade(GEMM, params={"M": 2**40, "K": 2**20, "N": 2**2}).rank_sizes()["n"] == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "positive integer"),
        (-4, "positive integer"),
        (2.5, "positive integer"),
        (float("inf"), "finite number"),
        (float("nan"), "finite number"),
        (True, "a number"),
        ("64", "a number"),
        (1e30, "too large"),
    ],
)
def test_a_bad_size_parameter_is_refused_when_parsed_naming_it(value, expected):
    with pytest.raises(WorkloadError, match=rf"param K.*{expected}"):
        parse_cascade(GEMM, params={"M": 4, "K": value, "N": 2})


def test_a_bad_param_line_is_refused_at_its_line():
    with pytest.raises(WorkloadError, match=r"line 1: param K: .*finite number"):
        parse_cascade("param K = inf\n" + GEMM, params={"M": 4, "N": 2})
    with pytest.raises(WorkloadError, match=r"param K: bad size for rank k.*got 0"):
        parse_cascade("param K = 0\n" + GEMM, params={"M": 4, "N": 2})
    with pytest.raises(WorkloadError, match=r"line 1: param W: parameter too large"):
        parse_cascade("param W = 1e30\n" + GEMM)


def test_a_split_tile_of_zero_or_too_large_is_refused():
    text = "tensor A[m]\nrank m -> m1, m0 : T\nB[m1,m0] = A[m1,m0]\n"
    with pytest.raises(WorkloadError, match=r"param T: bad size for rank m0.*got 0"):
        parse_cascade(text, params={"M": 8, "T": 0})
    with pytest.raises(WorkloadError, match=r"param T: parameter too large"):
        parse_cascade(text, params={"M": 8, "T": 2**41})


def test_a_cascade_without_sizes_still_parses_and_counting_names_the_missing_one():
    c = parse_cascade(GEMM)
    with pytest.raises(WorkloadError, match="no size for rank m"):
        count(c)


def test_count_refuses_a_parameter_the_einsum_reads_without_a_value():
    text = "tensor A[m]\ntensor S[]\nB[m] = A[m] * SCALE\n"
    c = parse_cascade(text, params={"M": 4})
    with pytest.raises(WorkloadError, match=r"line 3: unknown parameter SCALE"):
        count(c)
    assert count(c, {"SCALE": 0.5}).einsum("B").ops == {"mul": 4.0}


# --- iteration_points: the cost estimate callers use before a huge job -------------------
def test_iteration_points_is_the_dense_work_of_every_einsum():
    c = parse_cascade(GEMM, params={"M": 4, "K": 8, "N": 2})
    assert iteration_points(c) == 4 * 8 * 2
    two = parse_cascade(
        GEMM + "D[m] = sum(n) C[m,n]\nE[m,n] = C[m,n] if m <= n\n",
        params={"M": 4, "K": 8, "N": 6},
    )
    # C: m,n,k; D: m,n; E: m,n, its condition not applied (an upper bound on the work)
    assert iteration_points(two) == 4 * 6 * 8 + 4 * 6 + 4 * 6
    assert count(two).einsum("E").points == sum(min(n + 1, 4) for n in range(6))


def test_iteration_points_grows_with_the_shape_and_takes_no_time_at_ten_million():
    w = get_workload("mha", B=1, H=2, S=1024, D=64)
    small = iteration_points(w.cascade)
    big = iteration_points(w.cascade, {"Sq": 10**7, "Skv": 10**7})
    assert big > small * (10**7 / 1024) ** 2 * 0.9
    with pytest.raises(WorkloadError, match="iteration space too large"):
        iteration_points(w.cascade, {"Sq": 2**40, "Skv": 2**40})


# --- library parameters (--set) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("S", "1e30", r"mha\.Sq: value too large"),
        ("B", "10000000000000000000", r"mha\.B: value too large"),
        ("B", "10**19", r"mha\.B: bad value: expected a number"),
        ("S", "inf", r"mha\.Sq: bad value: expected an integer"),
        ("S", "nan", r"mha\.Sq: bad value: expected an integer"),
        ("S", "-4", r"mha\.Sq: bad value: expected a positive size"),
        ("S", "true", r"mha\.Sq: bad value: expected a number"),
        ("S", "\u0663", r"mha\.Sq: bad value: expected a number"),
    ],
)
def test_a_bad_set_value_for_a_library_workload_exits_2_naming_it(key, value, expected):
    rc, _, err = _cli(["workload", "show", "mha", "--set", f"{key}={value}"])
    assert rc == 2
    assert err.startswith("error: ")
    assert re.search(expected, err), err


def test_an_arabic_digit_is_text_not_a_number():
    assert parse_set_options(["S=\u0663", "B=3"]) == {"S": "\u0663", "B": 3}


def test_a_library_shape_past_the_bounds_is_refused_before_anything_is_allocated():
    with pytest.raises(WorkloadError, match=r"cascade mha: Einsum QK: iteration space too large"):
        get_workload("mha", B=2**20, H=2**10, S=2**20, D=128)


# --- expression nesting ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "rhs",
    [
        "(" * 500 + "A[m]" + ")" * 500,
        "exp(" * 300 + "A[m]" + ")" * 300,
        "-" * 3000 + "A[m]",
        " + ".join(["A[m]"] * 3000),
        "A[" + "+".join(["M"] * 300) + "]",
    ],
    ids=["parens", "calls", "signs", "chain", "index"],
)
def test_deep_expressions_are_refused_at_a_line_and_column(rhs):
    with pytest.raises(WorkloadError, match=r"line 2, col \d+: expression nested too deeply"):
        parse_cascade("tensor A[m]\nB[m] = " + rhs, params={"M": 4})


def test_a_condition_chain_is_refused_too_and_a_shallow_one_is_fine():
    with pytest.raises(WorkloadError, match="nested too deeply"):
        parse_cascade("tensor A[m]\nB[m] = A[m] if " + " + ".join(["m"] * 500) + " <= 5")
    c = parse_cascade("tensor A[m]\nB[m] = " + " + ".join(["A[m]"] * 60), params={"M": 4})
    assert count(c).einsum("B").ops == {"add": 59 * 4.0}


def test_an_error_quotes_at_most_a_short_excerpt_of_a_huge_line():
    with pytest.raises(WorkloadError) as exc:
        parse_cascade("tensor A[m]\nB[m] = A[m] " + "$" + "x" * 100_000)
    assert len(str(exc.value)) < 500


def test_bit_widths_are_bounded():
    with pytest.raises(WorkloadError, match=r"line 1, col \d+: bad bit width"):
        parse_cascade("tensor A[m] : bits=99999999999999999999\nB[m] = A[m]")


# --- files: encodings, YAML types -------------------------------------------------------------
def test_a_binary_cascade_file_names_the_file_and_byte_offset(tmp_path: Path):
    f = tmp_path / "bad.ein"
    f.write_bytes(b"tensor A[m]\n\xff\xfeB[m] = A[m]\n")
    rc, _, err = _cli(["workload", "check", str(f)])
    assert rc == 2
    assert f"{f}: cascade file is not UTF-8 text" in err
    assert "byte 0xff at byte offset 12" in err
    y = tmp_path / "bad.yaml"
    y.write_bytes(b"einsums: [\x80]\n")
    with pytest.raises(WorkloadError, match=r"bad\.yaml"):
        load_cascade(y)


def _yaml(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "c.yaml"
    f.write_text(body)
    return f


_SPLIT = """params: {M: 8}
ranks:
  m: {split: [m1, m0], tile: TILE}
tensors:
  A: {ranks: [m]}
einsums:
  - B[m1,m0] = A[m1,m0]
"""


@pytest.mark.parametrize(
    ("tile", "expected"),
    [
        ("0", "got 0"),
        ("-2", "got -2"),
        ("true", "got True"),
        ("1.5", "got 1.5"),
        ("1.0e+30", "got 1e"),
        ("[4]", r"got \[4\]"),
        ("'4 + 4'", "got '4 \\+ 4'"),
    ],
)
def test_a_yaml_tile_that_is_not_a_positive_integer_names_its_path(tmp_path, tile, expected):
    f = _yaml(tmp_path, _SPLIT.replace("TILE", tile))
    with pytest.raises(WorkloadError, match=rf"ranks\.m\.tile: .*{expected}") as exc:
        load_cascade(f)
    assert "expected a positive integer or a parameter name" in str(exc.value)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ("params: {M: true}", r"params\.M: .*a number"),
        ("params: {M: .nan}", r"params\.M: .*finite number"),
        ("params: {M: .inf}", r"params\.M: .*finite number"),
        ("params: {M: -8}", r"param M: bad size for rank m"),
        ("params: 0", r"params: bad cascade YAML"),
        ("params: {8: 1}", r"params\.8: .*parameter name"),
    ],
)
def test_yaml_parameters_that_are_not_sizes_name_the_field(tmp_path, patch, path):
    f = _yaml(tmp_path, _SPLIT.replace("TILE", "4").replace("params: {M: 8}", patch))
    with pytest.raises(WorkloadError, match=path):
        load_cascade(f)


@pytest.mark.parametrize(
    ("tensor", "path"),
    [
        ("{ranks: [m], bits: true}", r"tensors\.A\.bits"),
        ("{ranks: [m], bits: 100000}", r"tensors\.A\.bits"),
        ("{ranks: [m], density: true}", r"tensors\.A\.density"),
        ("{ranks: [m], dtype: [bf16]}", r"tensors\.A\.dtype"),
    ],
)
def test_yaml_tensor_fields_of_the_wrong_type_name_the_field(tmp_path, tensor, path):
    f = _yaml(tmp_path, _SPLIT.replace("TILE", "4").replace("{ranks: [m]}", tensor))
    with pytest.raises(WorkloadError, match=path):
        load_cascade(f)


def test_a_duplicate_yaml_key_is_refused(tmp_path):
    f = _yaml(tmp_path, "params: {M: 8}\nparams: {M: 4}\n" + _SPLIT.replace("TILE", "4")[15:])
    with pytest.raises(WorkloadError, match=r"c\.yaml: line 2.*duplicate"):
        load_cascade(f)


# --- workload check --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-4", "0", "inf", "1e30"])
def test_workload_check_refuses_a_bad_size_it_used_to_call_ok(tmp_path, value):
    f = tmp_path / "g.ein"
    f.write_text(f"param M = {value}\nparam K = 8\nparam N = 2\n" + GEMM)
    rc, out, err = _cli(["workload", "check", str(f)])
    assert (rc, out) == (2, "")
    assert "param M" in err


def test_workload_check_counts_a_complete_cascade_and_notes_a_missing_size(tmp_path):
    f = tmp_path / "g.ein"
    f.write_text("param M = 4\nparam K = 8\n" + GEMM)
    rc, out, _ = _cli(["workload", "check", "--json", str(f)])
    assert rc == 0
    assert '"macs": null' in out
    assert "no size given for N" in out
    f.write_text("param M = 4\nparam K = 8\nparam N = 2\n" + GEMM)
    rc, out, _ = _cli(["workload", "check", str(f)])
    assert (rc, out) == (0, "ok: g: 1 einsums, inputs A,B -> outputs C, 64 MACs\n")


_WINDOW = """params: {B: 1, H: 2, S: 64, D: 16, W: 8}
ranks:
  q: {size: S}
  k: {size: S}
tensors:
  Q: {ranks: [b, h, q, d]}
  K: {ranks: [b, h, k, d]}
einsums:
  - QK[b,h,k,q] = Q[b,h,q,d] * K[b,h,k,d] if k <= q and q - k < W
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inf", "bad parameter value: expected a finite number, got inf"),
        ("nan", "bad parameter value: expected a finite number, got nan"),
        ("1e30", "parameter too large: expected at most 2**40"),
        ("true", "bad parameter value: expected a number, got True"),
        ("abc", "bad parameter value: expected a number, got 'abc'"),
    ],
)
def test_a_condition_parameter_set_on_a_yaml_cascade_is_checked(tmp_path, value, expected):
    f = _yaml(tmp_path, _WINDOW)
    argv = ["simulate", "--arch", "fusemax", "--workload", str(f), "--engine", "analytic"]
    rc, _, err = _cli([*argv, "--set", f"W={value}"])
    assert rc == 2
    assert err.startswith(f"error: param W: {expected}"), err
    rc, out, _ = _cli([*argv, "--set", "W=4"])
    assert rc == 0
    assert "cycles" in out


def test_a_cascade_file_past_the_size_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import workloads._files as files

    assert files.MAX_FILE_BYTES == 64 * 2**20
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    f = tmp_path / "big.ein"
    f.write_text("# comment\n" * 11)
    rc, _, err = _cli(["workload", "check", str(f)])
    assert rc == 2
    assert (
        err == f"error: {f}: cascade file too large: expected at most 100 bytes, got '110 bytes'\n"
    )
    f.write_text(GEMM)
    assert _cli(["workload", "check", str(f)])[0] == 0


def test_verify_refuses_a_shape_the_reference_executor_cannot_hold_before_drawing_inputs():
    rc, _, err = _cli(["workload", "verify", "gemm", "--set", "M=100000", "--set", "N=100000"])
    assert rc == 2
    assert "cascade gemm: Einsum C: too large for the reference executor" in err
    assert "at most 2**30 points (product of M=100000, N=100000, K=" in err
    argv = ["workload", "verify", "gemm", "--set", "M=20000", "--set", "N=20000", "--set", "K=1"]
    rc, _, err = _cli(argv)
    assert rc == 2
    assert "cascade gemm: tensor C: too large for the reference executor" in err
    assert "at most 2**27 points" in err
    rc, out, _ = _cli(
        ["workload", "verify", "gemm", "--set", "M=64", "--set", "N=32", "--set", "K=8"]
    )
    assert rc == 0
    assert out.startswith("ok gemm: 1 shapes")


def test_execute_refuses_an_einsum_past_the_executor_bound():
    import numpy as np

    from workloads import execute

    c = parse_cascade(GEMM, params={"M": 2**11, "K": 2**10, "N": 2**10})
    a, b = np.zeros((2**11, 2**10)), np.zeros((2**10, 2**10))
    with pytest.raises(WorkloadError, match=r"Einsum C: too large for the reference executor"):
        execute(c, {"A": a, "B": b})


@pytest.mark.parametrize("window", ["0", "-3"])
def test_workload_check_refuses_a_condition_that_never_holds(tmp_path, window):
    text = (ROOT / "examples" / "cascades" / "sliding_window.ein").read_text()
    assert "param W = 512\n" in text
    f = tmp_path / "w.ein"
    f.write_text(text.replace("param W = 512\n", f"param W = {window}\n"))
    rc, out, err = _cli(["workload", "check", str(f)])
    assert (rc, out) == (2, "")
    assert err.startswith("error: line 16: Einsum S computes no point: its condition")
    assert err.endswith(f"got 'W={window}'\n")
    f.write_text(text)
    rc, out, _ = _cli(["workload", "check", str(f)])
    assert rc == 0
    assert out.startswith("ok: w: 12 einsums")


_SPARSE = """tensor Q[p,e]
tensor K[m,e]
sparsity QK : block(TILE, density=0.5)
QK[m,p] = Q[p,e] * K[m,e]
"""


def test_a_sparsity_tile_past_2_pow_40_is_refused_at_its_column():
    with pytest.raises(WorkloadError, match=r"line 3, col 21: bad tile size.*<= 2\*\*40"):
        parse_cascade(_SPARSE.replace("TILE", "p=1e30"))


def test_a_sparsity_tile_larger_than_its_rank_is_one_block_not_a_huge_array():
    import numpy as np

    from workloads import execute

    params = {"M": 64, "P": 64, "E": 8}
    ones = {"Q": np.ones((64, 8)), "K": np.ones((64, 8))}
    huge = parse_cascade(_SPARSE.replace("TILE", "p=1e12"), params=params)
    whole = parse_cascade(_SPARSE.replace("TILE", "p=64"), params=params)
    assert np.array_equal(execute(huge, ones)["QK"], execute(whole, ones)["QK"])
    assert count(huge).macs == count(whole).macs == 64 * 64 * 8 * 0.5
