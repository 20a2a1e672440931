"""Re-exports, kept for old imports: the protocols of Tables 1-3 moved to :mod:`vdm_lite.experiments`.

The protocols themselves (counts, data, feature networks) are in
:mod:`vdm_lite.experiments.protocols`; the driver (:func:`reproduce_benchmark`, the shards, the
tables, ``vdm-lite reproduce table1|table2|table3``) in :mod:`vdm_lite.experiments.tables1to3`.
"""

from .experiments.protocols import PROTOCOLS, SMOKE, TABLES, Protocol, StandInNet  # noqa: F401  (re-export)
from .experiments.tables1to3 import cli_reproduce, load_shard, reproduce_benchmark  # noqa: F401  (re-export)

__all__ = ["Protocol", "PROTOCOLS", "SMOKE", "StandInNet", "reproduce_benchmark", "load_shard", "cli_reproduce"]
