"""The sweep layer: turn a list of tasks into results, on Dask or in this process, through a
resumable results store.

A study lists its work as :class:`Task` objects (``fn(**kwargs) -> Result``); each result is
kept in the :class:`Store` under a key that covers the task and the numeric environment.
"""

from imbcl.sweep.env import NumericEnv
from imbcl.sweep.store import Store
from imbcl.sweep.task import Result, Task

__all__ = ["NumericEnv", "Result", "Store", "Task"]
