"""The GEMM model's split-K choice can be constrained to what a library is known to have
launched (a profiler trace's kernel names)."""

from archsim.gpu import gemm_costs, gpu_model
from archsim.gpu.gemm import choose_gemm_config

MODEL = gpu_model("h200")


def test_the_modelled_choice_leaves_a_32_row_projection_unsplit():
    assert choose_gemm_config(32, 4096, 4096, MODEL).split_k == 1


def test_split_k_true_picks_the_best_split_and_adds_its_reduce_kernel():
    cfg = choose_gemm_config(32, 4096, 4096, MODEL, split_k=True)
    assert cfg.split_k > 1
    names = [c.name for c in gemm_costs(32, 4096, 4096, MODEL, split_k=True)]
    assert names[-1] == "splitKreduce_kernel"
    assert len(names) == 2


def test_split_k_false_never_splits_and_true_falls_back_when_no_split_is_legal():
    assert choose_gemm_config(8, 256, 4096, MODEL, split_k=False).split_k == 1
    # 16k x 16k output tiles fill many waves: no split is legal, the unsplit choice stands
    big = choose_gemm_config(16384, 16384, 4096, MODEL, split_k=True)
    assert big.split_k == 1
    assert big == choose_gemm_config(16384, 16384, 4096, MODEL)
