"""A push memory is a storage level with address generators (``address_generators``,
``address_generator_loops``): a CGRA memory tile that streams its contents to the PEs with no
load/store instructions. The fields are optional: every preset loads unchanged, as an ordinary
level with none."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsim.cli import main
from archsim.errors import ArchSpecError
from archsim.spec import Architecture, StorageLevel, list_presets, load_arch

PUSH_CGRA = Path(__file__).parents[2] / "validation" / "reproduce" / "push_cgra.yaml"


def _level(**kw: object) -> StorageLevel:
    """push_cgra's MEM level with ``kw`` changed, validated as part of the architecture."""
    raw = load_arch(PUSH_CGRA).to_dict()
    mem = next(lv for lv in raw["levels"] if lv["name"] == "MEM")
    mem.update({"address_generators": 0, "address_generator_loops": 0, **kw})
    if mem.get("kind") == "dram":
        raw["levels"] = [lv for lv in raw["levels"] if lv["name"] != "DRAM"]
        raw["levels"].insert(0, raw["levels"].pop(raw["levels"].index(mem)))
        raw["networks"] = []
    return Architecture.from_dict(raw, source="test").level("MEM")


def test_a_memory_tile_with_address_generators_is_a_push_memory():
    lv = _level(address_generators=4, address_generator_loops=6)
    assert (lv.address_generators, lv.address_generator_loops) == (4, 6)


def test_an_ordinary_level_has_none():
    lv = _level()
    assert (lv.address_generators, lv.address_generator_loops) == (0, 0)


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_unchanged_without_address_generators(name):
    assert all(lv.address_generators == 0 for lv in load_arch(name).levels)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"address_generators": 4}, "address_generator_loops"),  # loops missing
        ({"address_generator_loops": 6}, "address_generator_loops"),  # generators missing
        ({"address_generators": -1, "address_generator_loops": 6}, "address_generators"),
        ({"address_generators": 2.5, "address_generator_loops": 6}, "address_generators"),
    ],
)
def test_generators_and_loops_are_validated_together(kw, field):
    with pytest.raises(ArchSpecError, match=field):
        _level(**kw)


def test_dram_is_not_a_push_memory():
    with pytest.raises(ArchSpecError, match="on-chip push memory"):
        _level(kind="dram", address_generators=4, address_generator_loops=6)


def test_the_fields_round_trip_and_update_by_name():
    arch = load_arch(PUSH_CGRA)
    mem = arch.level("MEM")
    assert (mem.address_generators, mem.address_generator_loops) == (512, 6)
    assert Architecture.from_dict(arch.to_dict()) == arch
    fewer = arch.with_updates({"levels.MEM.address_generators": 256})
    assert fewer.level("MEM").address_generators == 256
    with pytest.raises(ArchSpecError, match="address_generator_loops"):
        arch.with_updates({"levels.MEM.address_generator_loops": 0})


def test_cli_reports_a_bad_push_memory_as_an_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PUSH_CGRA.read_text().replace("address_generator_loops: 6", "address_generator_loops: 0")
    )
    assert main(["arch", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "address_generator_loops" in err
    assert "Traceback" not in err
