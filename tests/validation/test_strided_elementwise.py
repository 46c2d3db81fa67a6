"""PyTorch's element-wise iterator: which ops run the vectorised kernel, and the integer work
of the others (validation._strided), fitted on one committed trace (validation.fit_elementwise)."""

from __future__ import annotations

import pytest

from validation._strided import BASE, PER_OPERAND_DIM, iteration_dims, offset_int_ops

Q_T = ([1, 32, 2048, 128], [8388608, 128, 4096, 1])  # q after view(b, s, h, d).transpose(1, 2)
ROPE = ([1, 1, 2048, 128], [262144, 262144, 128, 1])  # cos/sin broadcast over heads


def test_contiguous_same_shape_operands_merge_into_one_vectorised_dimension():
    x = ([8, 2048, 4096], [8388608, 4096, 1])
    assert iteration_dims([8, 2048, 4096], [x, x]) == (1, True)
    assert offset_int_ops([8, 2048, 4096], [x, x]) == 0.0


def test_a_transposed_operand_leaves_three_dimensions_and_a_broadcast_one_two():
    assert iteration_dims([1, 32, 2048, 128], [Q_T, ROPE]) == (3, False)
    contiguous_q = ([1, 32, 2048, 128], [8388608, 262144, 128, 1])
    # contiguous, but sin is broadcast over the heads: heads stay a dimension of their own
    assert iteration_dims([1, 32, 2048, 128], [contiguous_q, ROPE]) == (2, False)


def test_the_output_follows_the_first_full_size_input_so_a_slice_of_it_merges():
    # neg(q[..., 64:]) of a transposed q: heads and tokens do not merge in the input
    assert iteration_dims([1, 32, 2048, 64], [([1, 32, 2048, 64], [8388608, 128, 4096, 1])]) == (
        2,
        False,
    )


def test_copy_into_a_cache_view_counts_the_view_as_its_output():
    dst = ([1, 8, 2048, 128], [4195328, 524416, 128, 1])  # k_cache[:, :, :2048]
    src = ([1, 8, 2048, 128], [2097152, 128, 1024, 1])  # transposed k
    assert iteration_dims([1, 8, 2048, 128], [dst, src], dense_output=False) == (3, False)
    ops = offset_int_ops([1, 8, 2048, 128], [dst, src], dense_output=False)
    assert ops == pytest.approx(BASE + PER_OPERAND_DIM * 2 * 3)


def test_integer_work_grows_with_operands_times_dimensions():
    two = offset_int_ops(
        [1, 32, 2048, 128], [([1, 32, 2048, 128], [8388608, 262144, 128, 1]), ROPE]
    )
    three = offset_int_ops([1, 32, 2048, 128], [Q_T, ROPE])
    assert three - two == pytest.approx(PER_OPERAND_DIM * 3)


def test_the_committed_constants_are_the_fit_on_the_committed_fit_trace():
    from validation.fit_elementwise import fit

    base, slope, n = fit()
    assert n >= 8
    assert (round(base, 1), round(slope, 2)) == (BASE, PER_OPERAND_DIM)


def test_the_check_traces_prefill_layers_move_toward_the_measurement():
    """Checked on traces the fit never saw: the B=8 and B=32 prefill layers' RoPE kernels."""
    from archsim.gpu import gpu_model
    from validation._compare import compare_trace
    from validation._torch_trace import read_torch_trace
    from validation.fit_elementwise import FIT_TRACE

    for name in ("b8_prefill", "b32_prefill", "p8k_prefill"):
        path = FIT_TRACE.with_name(f"h200_llama3_8b_layer_{name}.trace.json.gz")
        cmp = compare_trace(read_torch_trace(path), gpu_model("h200"), arch="h200")
        strided = [
            m
            for m in cmp.matches
            if "elementwise_kernel" in m.kernel.name
            and "vectorized" not in m.kernel.name
            and m.kernel.dur_us > 20.0
        ]
        assert strided
        errs = sorted(abs(m.err_pct) for m in strided)
        assert errs[len(errs) // 2] < 20.0, (name, errs)  # median; the iterator-only model: ~65%
