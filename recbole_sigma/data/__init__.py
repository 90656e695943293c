"""Dataset tooling: convert the shared/raw files to RecBole atomic files, check and describe them.

Nothing here imports RecBole at import time except :mod:`recbole_sigma.data.stats` and
:mod:`recbole_sigma.data.load` (the checks before RecBole loads a ``.inter`` file).
"""

from recbole_sigma.data.check import require_dataset
from recbole_sigma.data.readers import DataFormatError

__all__ = ["DataFormatError", "require_dataset"]
