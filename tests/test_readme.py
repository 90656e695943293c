"""The README's Python recipes, run as written, in order, in one namespace.

They train on the real ml-100k; RecBole's command-line overrides (which win over everything the
recipes set) make the runs small.
"""

import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SMALL = ["--epochs=1", "--MAX_ITEM_LIST_LENGTH=5", "--hidden_size=8", "--d_state=4",
         "--train_batch_size=8192", "--eval_batch_size=8192", "--state=WARNING",
         "--show_progress=False"]


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


@pytest.mark.usefixtures("one_thread")
def test_readme_python_recipes_run_as_written(workdir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["readme", *SMALL])
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)

    metrics = {"hit@10", "ndcg@10", "mrr@10"}
    assert set(namespace["result"]["test_result"]) == metrics  # quick_start.run
    assert set(namespace["test_result"]) == metrics  # RecBole's building blocks
    assert namespace["trainer"].epochs == 1 and len(namespace["trainer"].epoch_times) == 1
    assert namespace["model"].max_seq_length == 5  # the loaded checkpoint's config
    scores, items = namespace["topk_score"], namespace["topk_iid_list"]  # RecBole's case study
    assert items.shape == (2, 10) and (items > 0).all()
    assert (scores[:, :-1] >= scores[:, 1:]).all()
