"""Search spaces in RecBole's ``hyper.test`` syntax: one ``name type values`` line per parameter.

Types are RecBole's: ``choice [..]``, ``uniform low,high``, ``quniform low,high,q`` and
``loguniform low,high`` (natural-log bounds, as hyperopt reads them). Unlike RecBole's own reader,
blank lines and ``#`` comments are allowed.
"""

import ast
import math
from pathlib import Path
from typing import Any, NamedTuple

TYPES = ("choice", "uniform", "quniform", "loguniform")
ALGOS = ("exhaustive", "bayes", "random")
DEFAULT_EVALS = 20  # trials of a random or bayes search without --max-evals


class Param(NamedTuple):
    name: str
    kind: str
    values: tuple


def read_space(path: str | Path) -> list[Param]:
    """The parameters of a ``hyper.test`` file, in file order."""
    params = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 3 or parts[1] not in TYPES:
            raise ValueError(f"{path}:{number}: expected 'name {'|'.join(TYPES)} values': {raw!r}")
        name, kind, text = parts[0], parts[1], "".join(parts[2:])
        values = ast.literal_eval(text) if kind == "choice" else ast.literal_eval(f"({text},)")
        params.append(Param(name, kind, tuple(values)))
    return params


def hyperopt_space(params: list[Param]) -> dict[str, Any]:
    """The space as hyperopt expressions, as RecBole's ``HyperTuning`` builds them."""
    from hyperopt import hp

    builders = {"choice": hp.choice, "uniform": hp.uniform, "quniform": hp.quniform,
                "loguniform": hp.loguniform}
    return {
        p.name: builders[p.kind](p.name, list(p.values)) if p.kind == "choice"
        else builders[p.kind](p.name, *p.values)
        for p in params
    }


def ray_space(params: list[Param], grid: bool) -> dict[str, Any]:
    """The space for Ray Tune; ``grid`` makes every ``choice`` a grid axis (exhaustive search)."""
    from ray import tune

    space = {}
    for p in params:
        if p.kind == "choice":
            space[p.name] = tune.grid_search(list(p.values)) if grid else tune.choice(p.values)
        elif p.kind == "uniform":
            space[p.name] = tune.uniform(*p.values)
        elif p.kind == "quniform":
            space[p.name] = tune.quniform(*p.values)
        else:
            low, high = p.values
            space[p.name] = tune.loguniform(math.exp(low), math.exp(high))
    return space
