"""Malformed cascades: each gives a WorkloadError that names the problem and where it is."""

from __future__ import annotations

import pytest

from archsim.errors import WorkloadError
from workloads import CascadeBuilder, load_cascade, parse_cascade

DECL = "tensor A[m,k] : bf16\ntensor B[k,n] : bf16\n"
OK = DECL + "C[m,n] = A[m,k] * B[k,n]\n"

# (cascade text, words the message must contain)
CASES: list[tuple[str, str]] = [
    # syntax
    (DECL + "C[m,n] = A[m,k] * \n", "expected an operand"),
    (DECL + "C[m,n] = A[m,k] B[k,n]\n", "unexpected text after statement"),
    (DECL + "C[m,n] A[m,k] * B[k,n]\n", "expected '='"),
    (DECL + "C[m,n = A[m,k] * B[k,n]\n", "expected ','"),
    (DECL + "C[m,n] = A[m,k * B[k,n]\n", "expected ','"),
    (DECL + "C[m,n] = (A[m,k] * B[k,n]\n", "expected ')'"),
    (DECL + "C[m,n] = A[m,k] * B[k,n])\n", "unexpected text after statement"),
    (DECL + "C[m,n] = A[m,k] @ B[k,n]\n", "unexpected character"),
    (DECL + "C[m,n] = A[m,k] ^ B[k,n]\n", "unexpected character"),
    (DECL + "C[m,n] = A[m,k] % B[k,n]\n", "unexpected character"),
    (DECL + "C[m,n] = A[m,k] & B[k,n]\n", "unexpected character"),
    (DECL + "C[m,n] = A[m,k] ** B[k,n]\n", "expected an operand"),
    (DECL + "= A[m,k] * B[k,n]\n", "expected a statement"),
    (DECL + "C = A[m,k] * B[k,n]\n", "expected a statement"),
    (DECL + "C[m,n] = \n", "expected an operand"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] if\n", "expected an operand"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] if m\n", "expected a comparison"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] if m <=\n", "expected an operand"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] if m = n\n", "expected a comparison"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] init\n", "expected a number"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] init x\n", "expected a number"),
    (DECL + "C[m,n] = A[m+,k] * B[k,n]\n", "rank offset must be an integer"),
    (DECL + "C[m,n] = A[m+1.5,k] * B[k,n]\n", "rank offset must be an integer"),
    ("param = 3\n" + OK, "expected a parameter name"),
    ("param M 3\n" + OK, "expected '='"),
    ("param M = x\n" + OK, "expected a number"),
    ("tensor A m,k : bf16\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "expected '['"),
    ("tensor A[m,k : bf16\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "expected ']'"),
    (
        "tensor A[m,K] : bf16\n" + "tensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n",
        "rank names start with a lower-case letter",
    ),
    (
        "tensor A[m,k] bf16\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n",
        "unexpected text after statement",
    ),
    ("rank m -> m1 : M0\n" + OK, "expected ','"),
    ("rank m -> m1, m0\n" + OK, "expected ':'"),
    ("rank m => m1, m0 : M0\n" + OK, "expected '->'"),
    ("rank m -> m1, m0 : 0\n" + OK, "bad split tile"),
    ("rank m -> m1, m0 : 2.5\n" + OK, "bad split tile"),
    (OK + "sparsity C block(M=4, density=0.5)\n", "expected ':'"),
    (OK + "sparsity C : block(M=4)\n", "needs a tile size and a density"),
    (OK + "sparsity C : block(density=0.5)\n", "needs a tile size and a density"),
    (OK + "sparsity C : slice(M=4)\n", "needs a tile size and a density"),
    (OK + "sparsity C : block(M=0, density=0.5)\n", "bad tile size"),
    (OK + "sparsity C : ragged(M=4, density=0.5)\n", "unknown sparsity kind"),
    (OK + "sparsity C : mask()\n", "expected a mask tensor name"),
    (OK + "sparsity C : density(x)\n", "expected a number"),
    (OK + "sparsity C : block(M=4 density=0.5)\n", "expected ','"),
    # unknown operators / functions
    (DECL + "C[m,n] = sum(k) A[m,k] * B[k,n]\nD[m,n] = log2(C[m,n])\n", "unknown function"),
    (DECL + "C[m,n] = foo(A[m,k] * B[k,n])\n", "unknown function"),
    (DECL + "C[m,k] = max(A[m,k])\n", "expected ','"),
    (DECL + "C[m,k] = exp(A[m,k], B[k,m])\n", "expected ')'"),
    (DECL + "C[m,n] = A[m,k] * sum(k) B[k,n]\n", "as a reduction must come first"),
    (DECL + "C[m,n] = prod(k) A[m,k] * B[k,n]\n", "unknown function"),
    # dtypes and densities
    ("tensor A[m,k] : bf17\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "unknown dtype"),
    ("tensor A[m,k] : float\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "unknown dtype"),
    ("tensor A[m,k] : bits=0\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "bad bit width"),
    ("tensor A[m,k] : bits=3.5\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "bad bit width"),
    (
        "tensor A[m,k] : density=0\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n",
        "density out of range",
    ),
    (
        "tensor A[m,k] : density=1.5\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n",
        "density out of range",
    ),
    (OK + "sparsity C : density(0)\n", "density out of range"),
    (OK + "sparsity C : block(M=4, density=2)\n", "density out of range"),
    # undefined tensors, use before definition, cycles, duplicates
    ("tensor A[m,k]\nC[m,n] = A[m,k] * B[k,n]\n", "undefined tensor B"),
    (DECL + "C[m,n] = A[m,k] * Z[k,n]\n", "undefined tensor Z"),
    (DECL + "D[m,n] = C[m,n] * 2\nC[m,n] = A[m,k] * B[k,n]\n", "C used before definition"),
    (DECL + "C[m,n] = C[m,n] + A[m,k] * B[k,n]\n", "cycle: C reads itself"),
    (DECL + "X[m,k] = Y[m,k] * 2\nY[m,k] = X[m,k] * A[m,k]\n", "Y used before definition"),
    (DECL + "R[m+1,k] = R[m+1,k] + A[m,k]\n", "cycle: R reads its own value"),
    (DECL + "C[m,n] = A[m,k] * B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "duplicate definition of C"),
    (
        DECL + "tensor A[m,k] : fp8\n" + "C[m,n] = A[m,k] * B[k,n]\n",
        "duplicate definition of tensor A",
    ),
    ("param M = 3\nparam M = 4\n" + OK, "duplicate definition of param M"),
    (OK + "sparsity C : density(0.5)\nsparsity C : density(0.4)\n", "duplicate sparsity"),
    (OK + "sparsity Z : density(0.5)\n", "sparsity on unknown tensor Z"),
    (OK + "sparsity C : mask(MASK)\n", "undefined mask tensor MASK"),
    (OK + "tensor MASK[m] : bool\nsparsity C : mask(MASK)\n", "mask rank mismatch"),
    (OK + "sparsity C : block(q=4, density=0.5)\n", "tile key q is not a rank of C"),
    (
        DECL + "C[m] = sum(k) A[m,k]\nsparsity C : block(M=2, density=0.5)\n",
        "block sparsity needs a tensor of >= 2 ranks",
    ),
    ("rank m -> m1, m0 : M0\nrank m -> m2, m3 : M0\n" + OK, "bad split"),
    ("rank m -> m, m0 : M0\n" + OK, "bad split"),
    ("rank m -> m1, m1 : M0\n" + OK, "bad split"),
    ("rank m : S\nrank m : T\n" + OK, "duplicate size for rank m"),
    # rank and shape errors
    (DECL + "C[m,n] = A[m] * B[k,n]\n", "rank/shape mismatch for A"),
    (DECL + "C[m,n] = A[m,k,n] * B[k,n]\n", "rank/shape mismatch for A"),
    (DECL + "C[m,n] = A[m,k] * B[n,k]\n", "rank/shape mismatch for B"),
    (DECL + "C[m,n] = A[m,k] * B[k,n]\nD[m] = sum(n) C[m]\n", "rank/shape mismatch for C"),
    (DECL + "C[m,n] = A[m,k] * B[k,n]\nD[m,n] = C[n,m] * 2\n", "rank/shape mismatch for C"),
    (DECL + "C[m,n,j] = A[m,k] * B[k,n]\n", "output rank j is not produced by any input"),
    (DECL + "C[m,q] = A[m,k] * B[k,n]\n", "output rank q is not produced by any input"),
    (DECL + "C[m,n] = sum(j) A[m,k] * B[k,n]\n", "reduced rank j is not in any input"),
    (DECL + "C[m,n] = sum(n) A[m,k] * B[k,n]\n", "reduced rank n is also an output rank"),
    (DECL + "C[m] = sum(k) A[m,k] * B[k,n]\n", "reduction must list every dropped rank"),
    (DECL + "C[m,m] = A[m,k] * B[k,m]\n", "output repeats a rank"),
    (DECL + "C[m] = max(A[m,k], A[m,k])\n", "'max' map with dropped ranks needs an explicit"),
    (DECL + "C[m] = min(A[m,k], A[m,k])\n", "'min' map with dropped ranks needs an explicit"),
    (DECL + "C[m,M] = A[m,k] * B[k,n]\n", "output indices must be ranks"),
    (DECL + "C[m+1,n+1] = A[m,k] * B[k,n]\n", "an iterative output advances one rank by +1"),
    (DECL + "C[m+2,n] = A[m,k] * B[k,n]\n", "an iterative output advances one rank by +1"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] init 0\n", "init is only for iterative outputs"),
    (DECL + "C[m,n] = 3 * 4\n", "needs at least one input tensor"),
    (DECL + "C[m,k] = A[m,k] * x\n", "unknown name x"),
    (DECL + "C[m,n] = A[m,k] * B[k,n] if m <= j\n", "condition uses rank j"),
    (DECL + "R[m+1,k] = R[m,k] + A[m,k]\nD[k] = R[m-1,k] * 1\n", "bad offset on an iterative"),
    (DECL + "tensor C[n,m] : fp32\nC[m,n] = A[m,k] * B[k,n]\n", "rank/shape mismatch for C"),
    (DECL + "R[m+1,k] = R[m,k] + A[m,k]\nsparsity R : density(0.5)\n", "sparsity on iterative"),
    ("", "needs at least one Einsum"),
    ("# only a comment\n" + DECL, "needs at least one Einsum"),
]


def _kinds() -> list[tuple[str, str]]:
    """Generated cases: every unknown dtype, function and operator character."""
    out = []
    for dtype in ("bf8", "fp4x", "int", "float32", "half", "double", "uint8", "q4", "e4m3", "tf32"):
        out.append(
            (f"tensor A[m,k] : {dtype}\ntensor B[k,n]\nC[m,n] = A[m,k] * B[k,n]\n", "unknown dtype")
        )
    for fn in ("gelu", "softmax", "log1p", "erf", "cos", "sin", "floor", "round", "pow", "mean"):
        out.append((DECL + f"C[m,k] = {fn}(A[m,k])\n", "unknown function"))
    for ch in ("!", "$", "?", "{", ";", "'", '"', "|", "~", "`"):
        out.append((DECL + f"C[m,n] = A[m,k] {ch} B[k,n]\n", "unexpected character"))
    return out


ALL = CASES + _kinds()


def test_there_are_at_least_100_malformed_cascades():
    assert len(ALL) >= 100


@pytest.mark.parametrize(("text", "words"), ALL, ids=[f"case{i}" for i in range(len(ALL))])
def test_malformed_cascade_raises_workload_error_naming_the_problem(text, words):
    with pytest.raises(WorkloadError) as info:
        parse_cascade(text)
    message = str(info.value)
    assert words in message
    if text.strip() and "needs at least one Einsum" not in words:
        assert "line " in message  # where it is
        assert "`" in message  # the statement quoted


def test_errors_carry_line_and_column():
    with pytest.raises(WorkloadError, match=r"^line 3, col 19: undefined tensor Z") as info:
        parse_cascade(DECL + "C[m,n] = A[m,k] * Z[k,n]\n")
    assert info.value.path == "line 3, col 19"
    assert "`C[m,n] = A[m,k] * Z[k,n]`" in str(info.value)


def test_shape_errors_say_expected_and_got():
    with pytest.raises(WorkloadError) as info:
        parse_cascade(DECL + "C[m,n] = A[m,k] * B[n,k]\n")
    assert info.value.expected == "B[k,n] (as in its declaration)"
    assert info.value.got == "B[n,k]"


def test_missing_size_parameters_are_reported_at_count_time():
    from workloads import count

    c = parse_cascade(OK)
    with pytest.raises(WorkloadError, match="no size for rank n: expected parameter N"):
        count(c, {"M": 2, "K": 3})
    with pytest.raises(WorkloadError, match="bad size for rank n"):
        count(c, {"M": 2, "K": 3, "N": 0})


def test_nonlinear_conditions_cannot_be_counted_but_still_execute():
    import numpy as np

    from workloads import count, execute

    c = parse_cascade(DECL + "C[m,n] = A[m,k] * B[k,n] if m * n <= 2\n")
    with pytest.raises(WorkloadError, match="not linear"):
        count(c, {"M": 3, "K": 2, "N": 3})
    out = execute(c, {"A": np.ones((3, 2)), "B": np.ones((2, 3))})
    assert out["C"].tolist() == [[2, 2, 2], [2, 2, 2], [2, 2, 0]]


def test_builder_and_yaml_errors_name_their_path(tmp_path):
    with pytest.raises(WorkloadError, match=r"builder\[2\], col 19: undefined tensor Z"):
        (
            CascadeBuilder()
            .tensor("A", ["m", "k"])
            .tensor("B", ["k", "n"])
            .einsum("C[m,n] = A[m,k] * Z[k,n]")
            .build()
        )
    with pytest.raises(WorkloadError, match="unknown dtype"):
        CascadeBuilder().tensor("A", ["m"], dtype="bf17")
    T = "tensors: {A: {ranks: [m]}}\n"  # noqa: N806
    E = "einsums: ['C[m] = A[m] * 2']\n"  # noqa: N806
    bad = {
        "name: x\neinsums: []\n": "einsums",
        "tensors: {A: {ranks: [m], dtype: bf99}}\n" + E: "tensors.A.dtype",
        "tensors: {A: {ranks: [m], colour: red}}\n" + E: "tensors.A.colour",
        "tensors: {A: {ranks: m}}\n" + E: "tensors.A.ranks",
        T
        + "einsums: ['C[m] = A[m] * 2', 'D[m] = Z[m]']\n": "einsums[1], col 8: undefined tensor Z",
        T + "einsums: ['C[m] = A[m] * 2', 7]\n": "einsums[1]",
        T + "params: {M: big}\n" + E: "params.M",
        T + "extra: 1\n" + E: "extra",
        "tensors: [A]\n" + E: "tensors",
        "- just\n- a list\n": "expected a mapping",
        "tensors: {A: {ranks: [m]}\n": "bad YAML",
        T + "sparsity: {C: 'block(M=2)'}\neinsums: ['C[m] = A[m]']\n": "sparsity.C",
        T + "ranks: {m: {split: [m1]}}\neinsums: ['C[m] = A[m]']\n": "ranks.m",
    }
    for i, (text, words) in enumerate(bad.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(WorkloadError) as info:
            load_cascade(path)
        assert words in str(info.value), (text, str(info.value))
    with pytest.raises(WorkloadError, match="cannot read cascade file"):
        load_cascade(tmp_path / "missing.yaml")
