"""The objective RecBole's ``HyperTuning`` calls, for plugin models too.

RecBole's own ``objective_function`` looks the model up by name inside ``recbole.model``; this one
builds the config with the plugin's ``build_config`` (via ``quick_start.run``), trains with the
checkpoint-safe trainer, and records each finished trial in the table before returning. A trial
whose whole effective config is already in the table is not trained again.
"""

from typing import Any, Optional

from recbole_sigma.quick_start import build_config, run
from recbole_sigma.reuse import effective_config
from recbole_sigma.tuning.results import TrialTable, trial_row


class Objective:
    """``objective(params, config_file_list)`` -> RecBole's result dict (valid and test)."""

    def __init__(self, model: str, dataset: str, table: TrialTable, resume: bool = True) -> None:
        self.model, self.dataset, self.table, self.resume = model, dataset, table, resume

    def __call__(
        self, params: dict[str, Any], config_file_list: Optional[list[str]] = None
    ) -> dict[str, Any]:
        params = {k: _plain(v) for k, v in params.items()}
        settings = self.settings(params, config_file_list)
        done = self.table.reuse(params, settings) if self.resume else None
        if done is not None:
            return self._from_row(done)
        result = run(self.model, self.dataset, config_file_list, dict(params), saved=True)
        self.table.append(trial_row(params, result), params, settings)
        return result

    def settings(
        self, params: dict[str, Any], config_file_list: Optional[list[str]] = None
    ) -> dict[str, Any]:
        """The effective config of the trial with these values."""
        config = build_config(self.model, self.dataset, config_file_list, dict(params))
        return effective_config(config)

    def _from_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A trial finished by an earlier (interrupted) run, rebuilt from its table row."""
        def metrics(prefix: str) -> dict[str, float]:
            return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}

        return {
            "model": self.model,
            "best_valid_score": row[self.table.valid_column],
            "valid_score_bigger": self.table.bigger,
            "best_valid_result": metrics("valid_"),
            "test_result": metrics("test_"),
        }


def _plain(value: Any) -> Any:
    """numpy scalars (from hyperopt) as Python numbers, so configs and tables stay clean."""
    return value.item() if hasattr(value, "item") else value
