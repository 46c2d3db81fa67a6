"""Collectives: closed forms (Thakur et al. 2005; Patarasuk & Yuan 2009) and system files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from models import (
    ModelError,
    System,
    collective_time,
    default_system,
    load_system,
    system_from_dict,
)

ALPHA = 1e-6  # s per step
BETA = 450e9  # B/s per direction


def _system(algorithm: str = "ring", topology: str = "switch", count: int = 8) -> System:
    return System("t", "h100", count, BETA, ALPHA, topology=topology, algorithm=algorithm)


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("n", [16_384, 16 * 2**20, 1e9])
def test_ring_all_reduce_time_is_its_closed_form(p: int, n: float) -> None:
    t, algo = collective_time("all_reduce", n, _system(count=p))
    assert algo == "ring"
    assert t == pytest.approx(2 * (p - 1) * ALPHA + 2 * (p - 1) / p * n / BETA, rel=1e-12)


def test_ring_all_reduce_of_16_mib_on_8_devices_in_numbers() -> None:
    # 14 steps x 1 us + 2 * 7/8 * 16 MiB / 450 GB/s = 14 us + 65.2 us
    t, _ = collective_time("all_reduce", 16 * 2**20, _system())
    assert t * 1e6 == pytest.approx(14 + 2 * 7 / 8 * 16 * 2**20 / 450e3, rel=1e-12)
    assert 79.0 < t * 1e6 < 79.5


def test_ring_all_gather_and_reduce_scatter_are_half_an_all_reduce_in_bytes() -> None:
    n = 64 * 2**20
    ag, _ = collective_time("all_gather", n, _system())
    rs, _ = collective_time("reduce_scatter", n, _system())
    assert ag == pytest.approx(7 * ALPHA + 7 / 8 * n / BETA)
    assert rs == ag


def test_tree_forms_and_auto_choice() -> None:
    tree = _system("tree")
    t, algo = collective_time("all_reduce", 1e6, tree)
    assert algo == "tree"
    assert t == pytest.approx(2 * 3 * (ALPHA + 1e6 / BETA))
    t, _ = collective_time("all_gather", 1e6, tree, devices=5)  # ceil(log2 5) = 3 steps
    assert t == pytest.approx(3 * ALPHA + 4 / 5 * 1e6 / BETA)
    auto = _system("auto")
    # small messages: the tree's 2 log2 p steps beat the ring's 2(p-1); large: the ring's
    # 2(p-1)/p n/beta beats the tree's 2 log2 p n/beta
    assert collective_time("all_reduce", 1024, auto)[1] == "tree"
    assert collective_time("all_reduce", 1e9, auto)[1] == "ring"
    assert (
        collective_time("all_reduce", 1e9, auto)[0]
        == collective_time("all_reduce", 1e9, _system())[0]
    )


def test_one_device_costs_nothing() -> None:
    assert collective_time("all_reduce", 1e9, _system(count=1))[0] == 0.0


def test_bad_systems_are_named_errors() -> None:
    with pytest.raises(ModelError, match="algorithm"):
        _system("tree", topology="ring")
    with pytest.raises(ModelError, match="count"):
        System("t", "h100", 0, BETA, ALPHA)
    with pytest.raises(ModelError, match=r"link\.bandwidth_GBps"):
        system_from_dict({"device": "h100", "count": 2, "link": {"latency_us": 1}})
    with pytest.raises(ModelError, match=r"link\.bandwidth_GBps"):
        system_from_dict({"device": "h100", "link": {"bandwidth_GBps": "fast", "latency_us": 1}})
    with pytest.raises(ModelError, match=r"sys\.links"):
        system_from_dict({"device": "h100", "links": {}}, where="sys")
    with pytest.raises(ModelError, match="collective"):
        collective_time("broadcast", 1.0, _system())
    with pytest.raises(ModelError, match="unknown system"):
        load_system("no-such-system")


def test_bundled_nvlink_systems() -> None:
    dgx = load_system("dgx-h100")
    assert (dgx.device, dgx.count, dgx.topology) == ("h100", 8, "switch")
    # H100 SXM datasheet: NVLink 900 GB/s both directions -> 450 GB/s per direction
    assert dgx.link_bw_bytes_per_s == 450e9
    h200 = load_system("hgx-h200")
    assert (h200.device, h200.link_bw_bytes_per_s) == ("h200", 450e9)
    assert math.isfinite(h200.latency_s)
    assert h200.latency_s > 0
    # A100 SXM datasheet: NVLink 600 GB/s both directions -> 300 GB/s per direction
    a100 = load_system("dgx-a100")
    assert (a100.device, a100.count, a100.link_bw_bytes_per_s) == ("a100", 8, 300e9)
    assert default_system("a100", 4).count == 4  # --tp N on a100 uses it


def test_a_system_file_describes_devices_and_links(tmp_path) -> None:
    import shutil

    import archsim.presets
    from archsim import load_arch
    from models import simulate_model

    presets = Path(archsim.presets.__file__).parent
    shutil.copy(presets / "h100.yaml", tmp_path / "my_gpu.yaml")
    (tmp_path / "box.yaml").write_text(
        "name: box\ndevice: my_gpu.yaml\ncount: 4\ntopology: ring\nalgorithm: auto\n"
        "link: {bandwidth_GBps: 64, latency_us: 5, energy_pj_per_bit: 10}\n"
    )
    box = load_system(tmp_path / "box.yaml")
    assert box.device == str(tmp_path / "my_gpu.yaml")  # relative to the system file
    assert load_arch(box.device).name == load_arch("h100").name
    assert (box.count, box.topology, box.link_bw_bytes_per_s) == (4, "ring", 64e9)
    assert box.latency_s == pytest.approx(5e-6)
    # auto on a ring is the ring algorithm
    assert collective_time("all_reduce", 1024, box) == (
        pytest.approx(2 * 3 * 5e-6 + 2 * 3 / 4 * 1024 / 64e9),
        "ring",
    )
    rep = simulate_model("llama3-8b", box.device, phase="decode", seq=128, tp=4, system=box)
    ar = [r for r in rep.rows if r.op == "tp_all_reduce"][0]
    t, _ = collective_time("all_reduce", 4096 * 2, box)
    assert ar.seconds == pytest.approx(t)
    # link energy: 2 (p-1)/p x 8 KiB sent per device x 8 bits x 10 pJ, plus static power
    link_j = 2 * 3 / 4 * 8192 * 8 * 10e-12
    assert ar.energy_j == pytest.approx(rep.static_w * t + link_j)
