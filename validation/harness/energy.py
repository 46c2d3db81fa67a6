"""NVML access (``pynvml`` if importable, else ctypes on ``libnvidia-ml.so.1``), a clock
sampler thread, and energy per call from NVML's total-energy counter.

Energy method: run the call back to back (no L2 flush) for at least ``min_seconds``,
read ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since driver load) before and
after (after a device synchronize), and report ``mJ_per_iter = dE / iterations`` and
``avg_W = dE / dt``. The SM clock is sampled every 20 ms during the loop
(``nvmlDeviceGetClockInfo(NVML_CLOCK_SM)``) and its median reported as ``sm_clock`` (MHz).
Idle power is the energy-counter slope over ``idle_seconds`` with the GPU idle.
"""

from __future__ import annotations

import ctypes
import statistics
import threading
import time
from collections.abc import Callable

__all__ = ["ClockSampler", "Nvml", "idle_power_w", "measure_energy"]

_NVML_CLOCK_SM = 1
_NVML_CLOCK_MEM = 2


class Nvml:
    """The few NVML queries the harness needs, for GPU ``index``.

    Uses ``pynvml`` (package ``nvidia-ml-py``) when importable, otherwise calls
    ``libnvidia-ml.so.1`` through ctypes. All values are plain numbers in the units
    named by each method.
    """

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._py = pynvml
            self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.backend = "pynvml"
        except ImportError:
            self._py = None
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
            self._check(self._lib.nvmlInit_v2())
            self._h = ctypes.c_void_p()
            self._check(self._lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self._h)))
            self.backend = "ctypes"

    @staticmethod
    def _check(rc: int) -> None:
        if rc != 0:
            raise RuntimeError(f"NVML call failed with return code {rc}")

    def _uint(self, fname: str, *args: int) -> int:
        value = ctypes.c_uint()
        self._check(getattr(self._lib, fname)(self._h, *args, ctypes.byref(value)))
        return int(value.value)

    def energy_mj(self) -> int:
        """Total energy since the driver loaded, millijoules."""
        if self._py:
            return int(self._py.nvmlDeviceGetTotalEnergyConsumption(self._h))
        value = ctypes.c_ulonglong()
        self._check(self._lib.nvmlDeviceGetTotalEnergyConsumption(self._h, ctypes.byref(value)))
        return int(value.value)

    def sm_clock_mhz(self) -> int:
        """Current SM clock, MHz."""
        if self._py:
            return int(self._py.nvmlDeviceGetClockInfo(self._h, _NVML_CLOCK_SM))
        return self._uint("nvmlDeviceGetClockInfo", _NVML_CLOCK_SM)

    def max_clock_mhz(self, which: str) -> int:
        """Maximum clock of ``which`` (``"sm"`` or ``"mem"``), MHz."""
        kind = _NVML_CLOCK_SM if which == "sm" else _NVML_CLOCK_MEM
        if self._py:
            return int(self._py.nvmlDeviceGetMaxClockInfo(self._h, kind))
        return self._uint("nvmlDeviceGetMaxClockInfo", kind)

    def power_w(self) -> float:
        """Power draw as NVML reports it, watts."""
        if self._py:
            return self._py.nvmlDeviceGetPowerUsage(self._h) / 1000.0
        return self._uint("nvmlDeviceGetPowerUsage") / 1000.0

    def power_limit_w(self) -> float:
        """Enforced power limit, watts."""
        if self._py:
            return self._py.nvmlDeviceGetEnforcedPowerLimit(self._h) / 1000.0
        return self._uint("nvmlDeviceGetEnforcedPowerLimit") / 1000.0

    def driver(self) -> str:
        """Driver version string."""
        if self._py:
            v = self._py.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        buf = ctypes.create_string_buffer(96)
        self._check(self._lib.nvmlSystemGetDriverVersion(buf, 96))
        return buf.value.decode()


class ClockSampler:
    """Background thread sampling SM clock and power every ``period_s``; query by window."""

    def __init__(self, nvml: Nvml, period_s: float = 0.02) -> None:
        self._nvml = nvml
        self._period = period_s
        self._samples: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._samples.append(
                    (time.perf_counter(), self._nvml.sm_clock_mhz(), self._nvml.power_w())
                )
            except RuntimeError:
                pass
            if len(self._samples) > 200_000:
                del self._samples[:100_000]
            self._stop.wait(self._period)

    def median_between(self, t0: float, t1: float) -> float | None:
        """Median SM clock (MHz) of samples taken in ``[t0, t1]`` (perf_counter seconds)."""
        vals = [c for t, c, _ in list(self._samples) if t0 <= t <= t1]
        return float(statistics.median(vals)) if vals else None

    def mean_power_between(self, t0: float, t1: float) -> float | None:
        """Mean of NVML power readings (W) taken in ``[t0, t1]``."""
        vals = [p for t, _, p in list(self._samples) if t0 <= t <= t1]
        return float(statistics.fmean(vals)) if vals else None

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join(timeout=1.0)


def idle_power_w(nvml: Nvml, idle_seconds: float = 2.0) -> float:
    """Average idle power over ``idle_seconds`` from the energy counter, watts."""
    import torch

    torch.cuda.synchronize()
    time.sleep(0.5)
    e0, t0 = nvml.energy_mj(), time.perf_counter()
    time.sleep(idle_seconds)
    e1, t1 = nvml.energy_mj(), time.perf_counter()
    return (e1 - e0) / 1000.0 / (t1 - t0)


def measure_energy(
    fn: Callable[[], object],
    est_ms: float,
    nvml: Nvml,
    sampler: ClockSampler,
    min_seconds: float = 2.5,
) -> dict[str, float | None]:
    """Energy per call of ``fn`` over a back-to-back loop of at least ``min_seconds``.

    Parameters
    ----------
    fn
        Callable enqueuing one call.
    est_ms
        Estimated time per call (ms), used to size the loop.

    Returns
    -------
    dict
        ``mJ_per_iter`` (millijoules), ``avg_W`` (watts), ``sm_clock`` (median MHz during
        the loop), ``power_w_sampled`` (mean of NVML power readings after the first 0.5 s,
        a cross-check of ``avg_W``), ``loop_iters``, ``loop_s`` (seconds),
        ``loop_ms_per_iter``.
    """
    import torch

    iters = max(10, int(min_seconds * 1000.0 / max(est_ms, 1e-3)) + 1)
    for _ in range(min(iters, 20)):
        fn()
    torch.cuda.synchronize()
    e0, t0 = nvml.energy_mj(), time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    e1, t1 = nvml.energy_mj(), time.perf_counter()
    joules = (e1 - e0) / 1000.0
    clock = sampler.median_between(t0, t1)
    power = sampler.mean_power_between(t0 + 0.5, t1)  # NVML power is a ~1 s running average
    return {
        "power_w_sampled": power,
        "mJ_per_iter": (e1 - e0) / iters,
        "avg_W": joules / (t1 - t0),
        "sm_clock": clock,
        "loop_iters": iters,
        "loop_s": t1 - t0,
        "loop_ms_per_iter": (t1 - t0) * 1e3 / iters,
    }
