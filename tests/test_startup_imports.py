"""What start-up imports: ``import mappings`` / ``import archsim`` and the light CLI paths
must not pull in the dataflow recipes, the mappers or the heavy libraries.

Each check runs in a fresh interpreter (this process has imported everything already) and
compares module sets, not times (bench/bench_startup.py prints the times).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archsim.errors import MappingError
from mappings._registry import BUILTIN, dataflow_knobs, dataflows_for, get_dataflow

#: libraries no start-up path below needs
HEAVY_LIBS = ("pandas", "scipy", "matplotlib", "numba", "pulp", "dask", "simpy")
#: every dataflow module and the searchers: imported only by the command that runs one
RECIPES = tuple(sorted({d.module for d in BUILTIN.values()})) + (
    "mappings._gpu",
    "mappings._mappers",
    "mappings._fusion_search",
    "mappings._mip",
)
_PREFIXES = ("mappings", "archsim", "workloads", "dse", "validation", "models", *HEAVY_LIBS)


def _modules_after(code: str, also: tuple[str, ...] = ()) -> set[str]:
    """The modules of the project, of HEAVY_LIBS and of the packages ``also`` loaded after
    running ``code`` in a new interpreter (the CLI's output is swallowed)."""
    prefixes = (*_PREFIXES, *also)
    script = (
        "import contextlib, io, json, sys\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n" + "".join(f"        {line}\n" for line in code.splitlines()) + "    "
        "except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _main(*argv: str) -> str:
    return f"from archsim.cli import main\nmain({list(argv)!r})"


def test_import_mappings_loads_only_the_registry() -> None:
    got = _modules_after("import mappings\nnames = mappings.list_dataflows()")
    assert {m for m in got if m.startswith("mappings")} == {"mappings", "mappings._registry"}
    assert not got & {*HEAVY_LIBS, "numpy", "pydantic", "workloads"}


def test_import_archsim_loads_no_spec_engine_or_recipes() -> None:
    got = _modules_after("import archsim")
    assert got <= {"archsim", "archsim.errors"}


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("simulate", "--help"),
        ("validate", "--help"),
        ("map", "--help"),
        ("sweep", "--help"),
        ("demo", "--help"),
        ("compare", "--help"),
        ("model", "--help"),
        ("reproduce", "--help"),
    ],
    ids=" ".join,
)
def test_help_pages_import_no_heavy_library(argv: tuple[str, ...]) -> None:
    got = _modules_after(_main(*argv))
    assert not got & set(HEAVY_LIBS) - {"simpy"}, sorted(got & set(HEAVY_LIBS))


#: the help pages that list no registry: they import only their command's own module
_PLAIN_HELP = {
    ("validate", "--help"): "validation",
    ("compare", "--help"): "validation",
    ("model", "--help"): "models",
    ("sweep", "--help"): "dse",
    ("demo", "--help"): "dse",
    ("arch", "--help"): "archsim",
}


@pytest.mark.parametrize("argv", sorted(_PLAIN_HELP), ids=" ".join)
def test_plain_help_pages_load_no_numpy_pydantic_or_yaml(argv: tuple[str, ...]) -> None:
    """Issue 12: a help page without a generated table starts as fast as ``archsim --help``
    (no numpy, pydantic, yaml or SimPy; no package but archsim and the command's own)."""
    got = _modules_after(_main(*argv), also=("numpy", "pydantic", "yaml"))
    assert not got & {*HEAVY_LIBS, "numpy", "pydantic", "yaml"}, sorted(got)
    assert {m.split(".")[0] for m in got} <= {"archsim", _PLAIN_HELP[argv]}, sorted(got)
    assert not any(m.startswith(("archsim.spec", "archsim.engine", "archsim.gpu")) for m in got)


def test_import_dse_loads_neither_pandas_nor_matplotlib_until_a_name_needs_it() -> None:
    got = _modules_after("import dse\nfrom dse import SweepSpec, count_points")
    assert not got & {"pandas", "matplotlib"}
    assert "pandas" in _modules_after("import dse\ndse.load")


def test_top_level_help_imports_no_command_module() -> None:
    got = _modules_after(_main("--help"))
    assert {m.split(".")[0] for m in got} <= {"archsim"}
    assert not any(m.startswith(("archsim.spec", "archsim.engine")) for m in got)


def test_simulate_on_a_gpu_imports_only_gpu_recipes() -> None:
    got = _modules_after(_main("simulate", "--arch", "h100", "--workload", "mha", "--set", "S=256"))
    assert "mappings._gpu.attention" in got  # auto picks flash3 for a prefill
    spatial_or_pim = {
        d.module for d in BUILTIN.values() if "gpu" not in d.kinds and d.module in RECIPES
    }
    assert not got & (spatial_or_pim | {"mappings._gemm"}), sorted(got & spatial_or_pim)
    searchers = {"mappings._mappers", "mappings._fusion_search", "mappings._mip"}
    assert not got & (searchers | {"pandas", "scipy", "matplotlib"})


def test_issue12_small_simulate_imports_only_what_it_runs() -> None:
    """Issue 12's small simulate (``--dataflow auto`` on h100): no dataframe, plotting, JIT,
    MIP or cluster library, and nothing of the packages above ``mappings``."""
    argv = "simulate --arch h100 --workload mha --set B=1 --set H=1 --set S=1024 --set D=128"
    got = _modules_after(_main(*argv.split()))
    assert "mappings._gpu.attention" in got  # it did plan and simulate
    assert "simpy" in got
    heavy = {"pandas", "scipy", "matplotlib", "numba", "pulp", "dask"}
    assert not got & heavy, sorted(got & heavy)
    assert not {m.split(".")[0] for m in got} & {"dse", "validation", "models"}, sorted(got)
    searchers = {"mappings._mappers", "mappings._fusion_search", "mappings._mip"}
    assert not got & searchers, sorted(got & searchers)


def test_import_models_loads_none_of_its_modules() -> None:
    got = _modules_after("import models", also=("numpy", "pydantic", "yaml"))
    assert got == {"models"}, sorted(got)


@pytest.mark.parametrize("package", ["archsim", "mappings", "models", "validation", "dse"])
def test_every_lazy_public_name_is_the_object_its_module_defines(package: str) -> None:
    """Each name in a package's ``__all__`` resolves (PEP 562 ``__getattr__`` or an eager
    import) to the very object of the module that defines it; ``__dir__`` lists it."""
    import importlib

    pkg = importlib.import_module(package)
    declared = getattr(pkg, "_EXPORTS", None) or getattr(pkg, "_WHERE", {})
    table = {n: m if m.startswith(f"{package}.") else f"{package}.{m}" for n, m in declared.items()}
    assert table, f"{package} declares no lazy names"
    for name in pkg.__all__:
        value = getattr(pkg, name)
        if name in table:
            assert value is getattr(importlib.import_module(table[name]), name), (package, name)
        assert name in dir(pkg), (package, name)
    assert set(table) <= set(pkg.__all__), sorted(set(table) - set(pkg.__all__))
    with pytest.raises(AttributeError, match="no_such_name"):
        pkg.no_such_name  # noqa: B018 - the attribute access is the test


def test_simulate_on_fusemax_imports_no_gpu_pim_or_search() -> None:
    argv = "simulate --arch fusemax --workload mha --set S=256 --engine analytic".split()
    got = _modules_after(_main(*argv))
    assert "mappings._attention" in got
    assert not any(m.startswith(("mappings._gpu", "mappings._pim")) for m in got)
    searchers = {"mappings._mappers", "mappings._fusion_search", "mappings._mip"}
    assert not got & (searchers | {"pandas", "scipy", "matplotlib", "numba"})


def test_every_declared_dataflow_is_what_its_module_registers() -> None:
    for name, decl in BUILTIN.items():
        fn = get_dataflow(name)
        assert fn.__module__ == decl.module, (name, fn.__module__, decl.module)


def test_every_dataflow_the_package_registers_is_declared() -> None:
    """A recipe added to any module of ``mappings`` without a :data:`BUILTIN` entry would be
    missing from ``list_dataflows()`` until something imported its module."""
    import importlib
    import pkgutil

    import mappings
    from mappings import _registry

    for info in pkgutil.walk_packages(mappings.__path__, "mappings."):
        importlib.import_module(info.name)
    ours = {n for n, fn in _registry._REGISTRY.items() if fn.__module__.startswith("mappings.")}
    assert ours == set(BUILTIN), sorted(ours ^ set(BUILTIN))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_declared_knobs_are_the_knobs_the_dataflow_accepts(name: str) -> None:
    """A dataflow refuses an unknown knob with ``expected`` listing the ones it takes (the
    registry's contract); the declaration must name the same, per architecture kind."""
    from archsim.spec import load_arch

    presets = {"spatial": "fusemax", "gpu": "h100", "pim": "hbm_pim"}
    for kind in BUILTIN[name].kinds:
        with pytest.raises(MappingError) as exc:
            get_dataflow(name)(None, load_arch(presets[kind]), {"__no_such_knob__": 1})  # type: ignore[arg-type]
        assert exc.value.path == "knobs.__no_such_knob__"
        expected = str(exc.value.expected)
        declared = dataflow_knobs(name, kind)
        assert declared is not None
        for knob in declared:
            assert repr(knob) in expected or knob in expected.split(" | "), (name, kind, knob)
        assert expected.count("'") // 2 == len(declared) or " | " in expected, (name, expected)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_a_dataflow_refuses_the_architecture_kinds_it_does_not_declare(name: str) -> None:
    """``kinds`` is what a caller may skip on: a dataflow given an architecture of another
    kind refuses it (an ``arch`` error), whatever the workload."""
    from archsim.spec import load_arch
    from mappings._api import resolve_workload

    presets = {"spatial": "fusemax", "gpu": "h100", "pim": "hbm_pim"}
    workloads = [
        resolve_workload("mha", {"S": 512}),
        resolve_workload("gemm", {}),
        resolve_workload("decode", {"Skv": 1024}),
    ]
    for kind, preset in presets.items():
        if kind in BUILTIN[name].kinds:
            continue
        for workload in workloads:
            with pytest.raises(MappingError) as exc:
                get_dataflow(name)(workload, load_arch(preset), {})  # type: ignore[arg-type]
            assert str(exc.value.path).startswith("arch"), (name, preset, exc.value.path)


def test_auto_tries_only_dataflows_declared_for_the_architecture_kind() -> None:
    from archsim.spec import list_presets, load_arch
    from mappings._api import auto_candidates

    for preset in list_presets():
        arch = load_arch(preset)
        assert set(auto_candidates(arch)) <= set(dataflows_for(arch.kind)), preset


def test_a_user_dataflow_registers_and_a_builtin_name_is_refused() -> None:
    from mappings import _registry

    def mine(workload, arch, knobs):  # noqa: ANN001, ANN202 - a user's recipe
        raise MappingError("never run", path="dataflow", expected="-", got="-")

    try:
        _registry.register_dataflow("users_own_flow")(mine)
        assert get_dataflow("users_own_flow") is mine
        assert "users_own_flow" in _registry.list_dataflows()
    finally:
        _registry._REGISTRY.pop("users_own_flow", None)
    with pytest.raises(ValueError, match="built in"):
        _registry.register_dataflow("flash2")(mine)
