"""The grouped-users table from checkpoints: ``python -m recbole_sigma.compare.checkpoints``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ML100K

from recbole_sigma.compare import checkpoints
from recbole_sigma.compare.checkpoints import main
from recbole_sigma.compare.grouped import UserEval
from recbole_sigma.quick_start import load_data_and_model, run

pytestmark = pytest.mark.usefixtures("one_thread")

# rows kept of users 1-8 of ml-100k, all rows of users 9-40 (user 9 has 22): test inputs of 4
# short (3-5 items) and 4 medium (6-20) users, and the long group's lower bound
KEEP = {1: 5, 2: 6, 3: 4, 4: 5, 5: 7, 6: 21, 7: 10, 8: 12} | dict.fromkeys(range(9, 41))
L = 50  # MAX_ITEM_LIST_LENGTH
REPO = Path(__file__).resolve().parents[1]


def _write_data(folder: Path) -> dict[int, int]:
    """The first rows of users 1-40 as ``folder/ml-tiny/ml-tiny.inter``; rows per user."""
    lines = ML100K.read_text().splitlines()
    rows, count = [lines[0]], dict.fromkeys(KEEP, 0)
    for line in lines[1:]:
        user = int(line.split("\t")[0])
        if user in KEEP and (KEEP[user] is None or count[user] < KEEP[user]):
            rows.append(line)
            count[user] += 1
    (folder / "ml-tiny").mkdir(parents=True)
    (folder / "ml-tiny" / "ml-tiny.inter").write_text("\n".join(rows) + "\n")
    return count


def _group_sizes(lengths: list[int]) -> list[int]:
    return [sum(lo <= n <= hi for n in lengths) for lo, hi in ((0, 5), (6, 20), (21, L))]


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory, one_thread):
    """SIGMA and SASRec trained on users of short, medium and long histories."""
    root = tmp_path_factory.mktemp("checkpoints")
    rows = _write_data(root / "data")
    config = dict(tiny_config, data_path=str(root / "data"), MAX_ITEM_LIST_LENGTH=L,
                  user_inter_num_interval="[1,inf)", item_inter_num_interval="[1,inf)",
                  epochs=2, learning_rate=0.01)  # some hits on test and valid
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        results = [run(model, "ml-tiny", config_dict=config) for model in ("SIGMA", "SASRec")]
        yield root, rows, results


def test_table_of_two_checkpoints_matches_recbole(trained, capsys):
    root, rows, results = trained
    files = [str(root / r["saved_model_file"]) for r in results]
    assert main([*files, "--out", str(root / "groups.md"), "--csv", str(root / "groups.csv")]) == 0
    out = capsys.readouterr().out
    assert out == (root / "groups.md").read_text()
    assert "| SIGMA (paper) | SIGMA-" in out and "| SASRec | SASRec-" in out
    assert "short users | short HR@10 | short NDCG@10 | short MRR@10 | medium users" in out
    frame = pd.read_csv(root / "groups.csv")
    # test input: every row but the last, at most L items
    sizes = _group_sizes([min(n - 1, L) for n in rows.values()])
    assert sizes[0] == 4 and min(sizes) > 0
    for file, result in zip(files, results, strict=True):
        mine = frame[frame["checkpoint"] == file].set_index("group")
        assert list(mine["users"]) == [*sizes, len(rows)]
        groups = mine.drop(index="all")
        for key in result["test_result"]:  # the groups' user-weighted mean is the overall value
            weighted = (groups[key] * groups["users"]).sum() / len(rows)
            assert weighted == pytest.approx(mine.loc["all", key])
        assert any(result["test_result"].values())
        for key, value in result["test_result"].items():
            assert round(mine.loc["all", key], 4) == value, key

    # the command in a process of its own, where no Config was built (RecBole's numpy aliases)
    cmd = [sys.executable, "-m", "recbole_sigma.compare.checkpoints", files[0], "--split", "valid",
           "--csv", str(root / "valid.csv")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("| model |") and "Valid users by history length" in done.stdout
    mine = pd.read_csv(root / "valid.csv").set_index("group")
    assert list(mine["users"]) == [*_group_sizes([min(n - 2, L) for n in rows.values()]), len(rows)]
    assert any(results[0]["best_valid_result"].values())
    for key, value in results[0]["best_valid_result"].items():  # the kept epoch's
        assert round(mine.loc["all", key], 4) == value, key


def test_bad_files_stop_before_any_evaluation(trained, capsys, monkeypatch):
    root, _, results = trained
    good = str(root / results[0]["saved_model_file"])
    (root / "notes.pth").write_text("not a checkpoint\n")
    torch.save({"weights": torch.zeros(3)}, root / "weights.pth")
    torch.save({"config": {"model": "SIGMA"}, "state_dict": {}}, root / "plain.pth")
    saved = torch.load(good, weights_only=False)
    saved["config"]["metrics"] = ["Hit", "ItemCoverage"]
    torch.save(saved, root / "coverage.pth")
    monkeypatch.setattr(checkpoints, "evaluate_checkpoint", lambda *a: pytest.fail("evaluated"))
    for bad, message in (
        ("nowhere.pth", "error: no checkpoint file at nowhere.pth"),
        (root / "notes.pth", f"error: {root / 'notes.pth'} is not a readable checkpoint"),
        (root / "weights.pth", f"error: {root / 'weights.pth'} is not a RecBole checkpoint"),
        (root / "plain.pth", f"error: {root / 'plain.pth'} is not a RecBole checkpoint (its"),
        (root / "coverage.pth", f"error: {root / 'coverage.pth'}: grouped evaluation supports"),
    ):
        assert main([good, str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err


def test_disagreement_with_recbole_stops(trained, monkeypatch):
    root, _, results = trained
    evaluate_users = checkpoints.evaluate_users

    def shifted(*args):
        users = evaluate_users(*args)
        users.values["ndcg@10"] = users.values["ndcg@10"] + 0.01
        return users

    monkeypatch.setattr(checkpoints, "evaluate_users", shifted)
    with pytest.raises(RuntimeError, match="grouped evaluation gives ndcg@10=.*RecBole"):
        main([str(root / results[1]["saved_model_file"])])


def test_paired_differences_match_users_by_id():
    def evaluated(name, ids, ndcg):
        users = UserEval(np.zeros(len(ids)), {"ndcg@10": np.array(ndcg)}, [1.0], [len(ids)],
                         np.array(ids))
        return checkpoints.CheckpointEval(Path(f"{name}.pth"), name, "test", users)

    first = evaluated("A", [3, 1, 2], [1.0, 0.0, 0.5])
    other = evaluated("B", [1, 2, 3], [0.0, 0.5, 0.0])  # differs from A for user 3 only
    table = checkpoints.paired_table([first, other])
    assert "| A | A.pth | 0.5000 ± 0.2887 |" in table  # std 0.5 over 3 users
    assert "| B | B.pth | -0.3333 ± 0.3333 |" in table  # differences 0, 0, -1
    with pytest.raises(ValueError, match="B.pth was not evaluated on the users of A.pth"):
        checkpoints.paired_table([first, evaluated("B", [1, 2, 4], [0.0, 0.5, 0.0])])
    with pytest.raises(ValueError, match="B.pth: a user has more than one row"):
        checkpoints.paired_table([first, evaluated("B", [1, 2, 2], [0.0, 0.5, 0.0])])


def test_paired_table_of_two_trained_checkpoints(trained, capsys):
    root, rows, results = trained
    files = [str(root / r["saved_model_file"]) for r in results]
    # one row per test user, named by the user's id
    _, _, dataset, _, _, _ = load_data_and_model(files[0])
    ids = checkpoints.evaluate_checkpoint(files[0]).users.user_ids
    users = dataset.id2token(dataset.uid_field, ids)
    assert sorted(int(u) for u in users) == sorted(rows) and len(ids) == len(rows)
    assert main([*files, "--paired"]) == 0
    out = capsys.readouterr().out
    assert f"First row: its test metrics ± their standard error over the {len(rows)} users" in out
    sasrec = next(line for line in out.splitlines() if line.startswith("| SASRec | SASRec-")
                  and "±" in line)
    cells = [c.strip() for c in sasrec.strip("|").split("|")]
    tests = [r["test_result"] for r in results]
    for cell, key in zip(cells[2:], ["hit@10", "ndcg@10", "mrr@10"], strict=True):
        difference = float(cell.split(" ± ")[0])
        assert difference == pytest.approx(tests[1][key] - tests[0][key], abs=2e-4), key


def test_paired_checkpoints_of_other_data_stop_before_any_evaluation(trained, capsys,
                                                                    monkeypatch):
    root, _, results = trained
    good = str(root / results[0]["saved_model_file"])
    saved = torch.load(good, weights_only=False)
    saved["data_files_sha1"] = "0" * 40
    torch.save(saved, root / "other-data.pth")
    monkeypatch.setattr(checkpoints, "evaluate_checkpoint", lambda *a: pytest.fail("evaluated"))
    assert main([good, str(root / "other-data.pth"), "--paired"]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: {root / 'other-data.pth'} was trained on other data files than {good}")
