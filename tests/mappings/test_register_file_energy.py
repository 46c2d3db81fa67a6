"""Register-file accesses (issue 10): the generic lowering prices the compute-side accesses
at register files, which no transfer of the program moves, with the architecture's own
per-byte energies (FuseMax: the artifact's Accelergy ERT per 16-bit word), and the result
adds them to its dynamic energy without changing its time."""

import pytest

from archsim import estimate, load_arch
from archsim.energy import FUSEMAX_ERT_PJ, register_file_energy_j
from archsim.errors import ArchSpecError
from mappings import lower
from mappings._api import plan_for
from workloads import get_workload


def test_the_fusemax_register_files_are_priced_from_the_artifact_ert():
    arch = load_arch("fusemax")
    acc = {"RF2D": {"read": 1000.0, "write": 500.0}, "GLB": {"read": 7.0, "write": 7.0}}
    e = register_file_energy_j(arch, acc)
    # per 16-bit word in the ERT, so per byte half of it
    assert e["RF2D.read"] == pytest.approx(1000 * FUSEMAX_ERT_PJ["rf_fusemax_2d_read"] / 2e12)
    assert e["RF2D.write"] == pytest.approx(500 * FUSEMAX_ERT_PJ["rf_fusemax_2d_write"] / 2e12)
    assert set(e) == {"RF2D.read", "RF2D.write"}  # the global buffer is charged by transfers


def test_a_bad_access_table_is_refused_naming_the_field():
    arch = load_arch("fusemax")
    with pytest.raises(ArchSpecError, match="lacks") as exc:
        register_file_energy_j(arch, {"NOPE": {"read": 1.0}})
    assert exc.value.path == "buffer_accesses.NOPE"
    with pytest.raises(ArchSpecError, match="negative"):
        register_file_energy_j(arch, {"RF2D": {"read": -1.0}})


def _fusemax_program():
    arch = load_arch("fusemax")
    w = get_workload("mha", B=1, H=4, S=1024)
    plan = plan_for(arch, w, dataflow="fusemax")[1]
    return arch, w, plan


def test_the_lowering_prices_every_register_file_access_it_does_not_move():
    arch, w, plan = _fusemax_program()
    prog = lower(w, plan.mapping, arch)
    acc = prog.meta["buffer_accesses"]
    rf = {lv.name for lv in arch.levels if lv.kind == "regfile"}
    assert rf & set(acc)  # the 1-pass cascade reads operands from the PEs' registers
    e = prog.meta["register_file_energy_j"]
    assert e  # and they are priced
    for key, joules in e.items():
        level, side = key.split(".")
        assert level in rf
        pj = getattr(arch.level(level), f"{side}_energy_pj_per_byte")
        assert joules == pytest.approx(acc[level][side] * pj * 1e-12)
        # every register-file access is one no transfer charges
        assert acc[level]["not_charged"] >= acc[level][side] * (1 - 1e-12)
    # small beside the whole (the FuseMax reproduction moves by 0.10-0.18%)
    total = estimate(prog, arch).energy_j
    assert 0 < sum(e.values()) < 0.01 * total


def test_the_result_charges_the_register_file_energy_and_no_time():
    arch, w, plan = _fusemax_program()
    prog = lower(w, plan.mapping, arch)
    e = prog.meta["register_file_energy_j"]
    meta = {k: v for k, v in prog.meta.items() if k != "register_file_energy_j"}
    bare_prog = prog.__class__(
        name=prog.name, phases=prog.phases, clock_hz=prog.clock_hz, meta=meta
    )
    r, bare = estimate(prog, arch), estimate(bare_prog, arch)
    for key, joules in e.items():  # beside what the transfers into the registers charge
        had = bare.energy_breakdown_j.get(key, 0.0)
        assert r.energy_breakdown_j[key] == pytest.approx(had + joules)
    assert r.cycles == bare.cycles
    assert r.energy_j == pytest.approx(bare.energy_j + sum(e.values()))
