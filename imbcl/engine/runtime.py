"""Thread and device policy, applied once when imbcl is imported.

On a small shared CPU, two torch threads with OpenMP's default (active) wait policy made small
operations 20-50x slower whenever another process was busy. imbcl therefore defaults to
``OMP_WAIT_POLICY=PASSIVE`` (set before torch loads, if the caller has not set it) and to
``IMBCL_THREADS`` threads (default 1: the engine's operations are small, and a test or
sweep runner gets its parallelism from processes), for torch and for the BLAS libraries that
numpy, scipy and scikit-learn call (under load, a multi-threaded BLAS made the linear probe
~15x slower). ``IMBCL_DEVICE`` overrides the device.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# BLAS libraries loaded later (scipy's, via scikit-learn) read these when they load.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("IMBCL_THREADS", "1"))

import torch  # noqa: E402  (must follow the OpenMP policy above)
from threadpoolctl import threadpool_limits  # noqa: E402


def configure_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default: env ``IMBCL_THREADS`` or 1) in torch and in BLAS."""
    if n is None:
        raw = os.environ.get("IMBCL_THREADS", "1")
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"IMBCL_THREADS must be a positive integer (got {raw!r})") from None
    if n < 1:
        raise ValueError(f"IMBCL_THREADS must be a positive integer (got {n})")
    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")
    return n


def default_device() -> torch.device:
    """``IMBCL_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    name = os.environ.get("IMBCL_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
