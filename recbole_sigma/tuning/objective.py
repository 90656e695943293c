"""The objective RecBole's ``HyperTuning`` calls, for plugin models too.

RecBole's own ``objective_function`` looks the model up by name inside ``recbole.model``; this one
builds the config with the plugin's ``build_config`` (via ``quick_start.run_recbole_sigma``),
trains with the checkpoint-safe trainer, and records each finished trial in the table before
returning. A trial whose whole effective config is already in the table is not trained again;
one that an earlier search left unfinished goes on from its last epoch
(:mod:`recbole_sigma.run_folders`).
"""

from pathlib import Path
from typing import Any, Optional

from recbole_sigma.quick_start import build_config, run_recbole_sigma
from recbole_sigma.reuse import config_hash, effective_config
from recbole_sigma.run_folders import only_process, run_folder, state_to_resume
from recbole_sigma.run_log import console_labelled
from recbole_sigma.trainer import delete_last_state
from recbole_sigma.tuning.results import TrialTable, trial_name, trial_row

TRIALS = "trials"  # trial folders: <checkpoint_dir>/trials/<config_hash>


class Objective:
    """``objective(params, config_file_list)`` -> RecBole's result dict (valid and test)."""

    def __init__(self, model: str, dataset: str, table: TrialTable) -> None:
        self.model, self.dataset, self.table = model, dataset, table

    def __call__(
        self, params: dict[str, Any], config_file_list: Optional[list[str]] = None
    ) -> dict[str, Any]:
        params = {k: _plain(v) for k, v in params.items()}
        settings, folder = self.prepare(params, config_file_list)
        done = finished_trial(self.table, params, settings)
        if done is not None:
            return self._from_row(done)
        result = train_trial((self.model, self.dataset, config_file_list, params, str(folder)))
        record(self.table, params, result, settings)
        return result

    def prepare(
        self, params: dict[str, Any], config_file_list: Optional[list[str]] = None
    ) -> tuple[dict[str, Any], Path]:
        """The effective config of the trial with these values, and its checkpoint folder."""
        config = build_config(self.model, self.dataset, config_file_list, dict(params))
        settings = effective_config(config)
        return settings, run_folder(config["checkpoint_dir"], TRIALS, config_hash(settings))

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


def finished_trial(table: TrialTable, params: dict[str, Any],
                   settings: dict[str, Any]) -> Optional[dict[str, Any]]:
    """``table``'s row of the trial with this effective config (:meth:`TrialTable.reuse`), else
    None; a last epoch's state that a kill between the row and its deletion left is deleted."""
    row = table.reuse(params, settings)
    if row is not None:
        delete_last_state(row.get("checkpoint"))
    return row


def record(table: TrialTable, params: dict[str, Any], result: dict[str, Any],
           settings: dict[str, Any]) -> None:
    """Append a trained trial to ``table``, then delete its last epoch's state, which
    :func:`train_trial` leaves until then."""
    table.append(trial_row(params, result), params, settings)
    delete_last_state(result.get("saved_model_file"))


def train_trial(task: tuple[str, str, Optional[list[str]], dict[str, Any], str]) -> dict[str, Any]:
    """One trial (here or in a worker process): ``(model, dataset, config files, tuned values,
    checkpoint folder)``, resumed from what an interrupted run of it left in the folder; its last
    epoch's state is left for :func:`record`."""
    model, dataset, config_file_list, point, folder = task
    label, fixed = trial_name(point), {"checkpoint_dir": folder}
    with only_process(Path(folder), label), console_labelled(label):
        config = build_config(model, dataset, config_file_list, dict(point), fixed)
        resume = state_to_resume(Path(folder), config, label)
        return run_recbole_sigma(model, dataset, config_file_list, dict(point), saved=True,
                                 resume=resume, fixed=fixed, keep_last_state=True)


def _plain(value: Any) -> Any:
    """numpy scalars (from hyperopt) as Python numbers, so configs and tables stay clean."""
    return value.item() if hasattr(value, "item") else value
