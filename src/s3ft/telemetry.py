"""What a stage unit cost: peak resident memory of this process and of the processes it started (a vLLM
engine, `accelerate launch` workers), and GPU memory where torch used CUDA or NVML lists the processes.

`reset_peaks()` opens a unit's window and `peaks()` closes it; the run directory writes them into each
unit's manifest. `nvml()` is the NVML module where a GPU is there (`provenance` reads the GPUs' names).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path


class ChildPeaks:
    """Peak memory of this process's descendants (a vLLM engine under `generate.isolate` and its own workers,
    `accelerate launch` workers), which this process's own peak does not see: a daemon thread sums their
    resident memory, and where NVML is there (`nvidia-ml-py`, a GPU) the GPU memory the driver lists for them,
    every `interval` seconds, and keeps the largest sums. Sampled, so a peak shorter than the interval can be
    missed; GPU memory is matched by PID, which a container that hides the host's PIDs defeats (then none)."""

    def __init__(self, interval: float = 0.25):
        import threading

        self.interval, self.rss, self.gpu = interval, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3ft-child-peaks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        lib = nvml()
        me = psutil.Process()
        while True:
            try:
                kids = me.children(recursive=True)
            except psutil.Error:
                kids = []
            rss = 0
            for k in kids:
                try:
                    rss += k.memory_info().rss
                except psutil.Error:
                    pass  # ended between the listing and the reading
            self.rss = max(self.rss, rss)
            if lib is not None and kids:
                used = gpu_used(lib, {k.pid for k in kids})
                if used is not None:
                    self.gpu = max(self.gpu or 0, used)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> dict[str, float]:
        """Stop sampling; `children_peak_rss_mib` (and `children_peak_gpu_mib`) where there were any children."""
        self._stop.set()
        self._thread.join(timeout=5)
        out = {"children_peak_rss_mib": round(self.rss / 2**20, 1)} if self.rss else {}
        if self.gpu:
            out["children_peak_gpu_mib"] = round(self.gpu / 2**20, 1)
        return out


@functools.cache
def nvml():
    """The `pynvml` module, initialised (once), where NVML and a GPU are there; else None."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml if pynvml.nvmlDeviceGetCount() > 0 else None
    except Exception:  # noqa: BLE001 - no library, no driver, no GPU: no GPU numbers
        return None


def gpu_used(nvml, pids: set[int]) -> int | None:
    """Bytes of GPU memory NVML lists for `pids`, over every device; None where it lists none of them."""
    total, seen = 0, False
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid in pids and proc.usedGpuMemory is not None:
                    total, seen = total + proc.usedGpuMemory, True
    except Exception:  # noqa: BLE001 - a driver error mid-run costs a sample, not the unit
        return None
    return total if seen else None


_children: ChildPeaks | None = None


def reset_peaks() -> None:
    """Start a unit's peak-memory window: this process's peak resident memory (Linux: `/proc/self/clear_refs`),
    where torch is loaded with CUDA its allocator's peak, and a fresh `ChildPeaks` for its child processes."""
    global _children
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: the peak is the process's since it started
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if _children is not None:
        _children.stop()
    _children = ChildPeaks()


def peaks() -> dict[str, float]:
    """Peak resident memory of this process since `reset_peaks` (MiB), peak GPU memory torch allocated in it
    where it used CUDA, and its child processes' peaks (`ChildPeaks`) where it had any."""
    global _children
    out: dict[str, float] = {}
    try:
        hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
        out["peak_rss_mib"] = round(int(hwm.split()[1]) / 1024, 1)
    except (OSError, StopIteration, ValueError):
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        out["peak_rss_mib"] = round(rss / (2**20 if sys.platform == "darwin" else 1024), 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_mib"] = round(max(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count()))
                                    / 2**20, 1)
    if _children is not None:
        out.update(_children.stop())
        _children = None
    return out
