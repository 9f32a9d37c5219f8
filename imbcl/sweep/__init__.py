"""The sweep layer: turn a list of tasks into results, on Dask or in this process, through a
resumable results store.

A study lists its work as :class:`Task` objects (``fn(**kwargs) -> Result``) and passes them to
:func:`run`, which returns their :class:`Result` objects in order: read from the
:class:`Store` when cached, else computed where ``scheduler`` says (see
:mod:`imbcl.sweep.cluster`) and stored by the worker that computed them.
"""

from imbcl.sweep.cluster import close
from imbcl.sweep.env import NumericEnv
from imbcl.sweep.failures import SweepError
from imbcl.sweep.run import Results, run
from imbcl.sweep.store import Store
from imbcl.sweep.task import Result, Task

__all__ = ["NumericEnv", "Result", "Results", "Store", "SweepError", "Task", "close", "run"]
