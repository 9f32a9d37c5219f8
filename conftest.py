"""Root pytest configuration, loaded before any test or notebook kernel starts.

Notebook kernels started by nbval inherit this process's environment, so the defaults set
here reach them: the small profile, one thread per pytest worker (two workers share the two
cores), OpenMP's passive wait policy, and sweeps computed inside the kernel (pytest's two
workers already use the two cores; a Dask cluster per notebook would oversubscribe them).
`make test` sets the same values explicitly.
"""

import os

os.environ.setdefault("IMBCL_PROFILE", "small")
os.environ.setdefault("IMBCL_THREADS", "1")
os.environ.setdefault("IMBCL_SCHEDULER", "inprocess")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
