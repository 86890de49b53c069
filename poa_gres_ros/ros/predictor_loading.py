"""Load and warm up the predictor for the node (no ROS imports; called by on_activate).

Warm-up: the first inferences of a backend are much slower (allocations, kernel selection,
TensorRT execution contexts; seconds on a Jetson), and a node that reported itself active
would then drop or delay the first camera frames. So ``warmup_runs`` dummy runs
(``Backend.warmup``) happen before the node subscribes to images and reports itself active.

Garbage-collector pauses: loading a model leaves the process with 0.2-0.8 million Python
objects (torch, transformers, ONNX Runtime; the most after an ONNX export in this process),
and CPython's full collection walks all of them while holding the GIL. Measured on the 2-core
development machine under load: 190-240 ms per full collection with a cached ONNX export,
840-1160 ms right after an export in the node process (5-20 s with 20 processes on 2 cores);
the node's callbacks allocate enough (messages, arrays) to trigger one every few seconds, and
each one stalled the frame in flight, the image callbacks and Ctrl-C handling (the 2 s
model-time spikes of the demo). :func:`freeze_heap` moves the objects that exist after loading
into the collector's permanent generation (``gc.freeze``), so later collections walk only
what the frames allocate (measured: 0.004 ms for a full collection after freezing). It does
not collect first: that full collection is exactly the pause to avoid (and it would delay a
Ctrl-C during activation); garbage that exists at that moment stays until
:func:`unfreeze_heap`, which the node calls before it frees a model (deactivate, cleanup).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

from poa_gres_ros.core.thresholds import Thresholds


def load_predictor(
    model_path: str | Path,
    values: dict,
    thresholds: Thresholds,
    should_stop: Callable[[], bool] = lambda: False,
):
    """Build ``Predictor.from_model_dir(model_path, backend, device, thresholds)`` and warm it up.

    Args:
        model_path: a resolved model folder.
        values: node parameter values; uses 'backend', 'device', 'warmup_runs', and passes
            'precision' and 'engine_cache_dir' as backend options when they differ from their
            defaults ('fp32', '' = the backend's default), and 'num_threads' when > 0.
        thresholds: initial thresholds.
        should_stop: polled between warm-up runs; True ends the warm-up early (Ctrl-C).

    Returns:
        (predictor, warm-up wall time in ms).

    Raises:
        whatever the predictor raises for a missing, corrupt or incompatible model
        (FileNotFoundError, ValueError, RuntimeError, ...); the node turns it into FAILURE.
    """
    from poa_gres_ros.inference import Predictor

    kwargs = {'backend': values['backend'], 'device': values['device']}
    for key, default in (('precision', 'fp32'), ('engine_cache_dir', '')):
        if values[key] != default:  # backend options; a backend that lacks one fails clearly
            kwargs[key] = values[key]
    if values.get('num_threads', 0) > 0:
        kwargs['num_threads'] = int(values['num_threads'])
    predictor = Predictor.from_model_dir(str(model_path), thresholds=thresholds, **kwargs)
    t0 = time.perf_counter()
    predictor.warmup(int(values['warmup_runs']), should_stop)
    return predictor, (time.perf_counter() - t0) * 1e3


def freeze_heap() -> tuple[int, float]:
    """Exclude every object that exists now from later collections (module docstring).
    Returns (objects frozen, milliseconds taken)."""
    t0 = time.perf_counter()
    gc.freeze()
    return gc.get_freeze_count(), (time.perf_counter() - t0) * 1e3


def unfreeze_heap() -> None:
    """Give the frozen objects back to the collector (before freeing a model)."""
    gc.unfreeze()
