"""imbcl: executable companion to 'Theoretical Analysis of Contrastive Learning under
Imbalanced Data: From Training Dynamics to a Pruning Solution' (arXiv 2602.10357).

Importing imbcl applies its thread policy (see :mod:`imbcl.engine.runtime`) before torch loads.
"""

from imbcl.engine.runtime import configure_threads, default_device  # noqa: I001  (sets OpenMP first)
from imbcl.engine.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    PruneConfig,
    RunSpec,
    TrainConfig,
)
from imbcl.engine.history import History
from imbcl.engine.train import Replicas, train

configure_threads()

__all__ = [
    "ConfigError",
    "DataConfig",
    "History",
    "ModelConfig",
    "PruneConfig",
    "Replicas",
    "RunSpec",
    "TrainConfig",
    "configure_threads",
    "default_device",
    "train",
]
