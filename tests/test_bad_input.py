"""Bad input (issue 12): a clear error naming the file, key and fix, or a logged repair; never a
silent wrong result. Real files in a temporary folder, loaded by RecBole."""

import logging
import warnings
from pathlib import Path

import pytest
import torch
from conftest import ML100K, TINY_CONFIG, write_slice

from recbole_sigma import parallel
from recbole_sigma.data import convert as cv
from recbole_sigma.data import stats
from recbole_sigma.quick_start import build_config, run
from recbole_sigma.recommend import main as recommend_main
from recbole_sigma.recommend import recommend
from recbole_sigma.utils import get_model

pytestmark = pytest.mark.usefixtures("one_thread")

HEADER = "user_id:token\titem_id:token\ttimestamp:float"
DATA_KEYS = ("USER_ID_FIELD", "ITEM_ID_FIELD", "TIME_FIELD", "load_col", "eval_args",
             "train_neg_sample_args")
DATA = {k: TINY_CONFIG[k] for k in DATA_KEYS}  # the paper's protocol, without k-core filters
RUN = {k: v for k, v in TINY_CONFIG.items() if k not in DATA_KEYS}  # sizes for a quick run


def _slice_rows(users: int = 40) -> list[str]:
    """The first ``users`` users of ml-100k, as ``user<TAB>item<TAB>rating<TAB>time`` lines."""
    keep = {str(u) for u in range(1, users + 1)}
    return [r for r in ML100K.read_text().splitlines()[1:] if r.split("\t")[0] in keep]


def _inter(root: Path, name: str, lines: list[str], header: str = HEADER) -> Path:
    """Write ``root/name/name.inter``: the header, then ``lines``."""
    path = root / name / f"{name}.inter"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n" if header else "")
    return path


def _ml_lines(users: int = 40) -> list[str]:
    return ["\t".join(r.split("\t")[:3]) for r in _slice_rows(users)]  # the item's own time column


def _load(root: Path, name: str, **overrides):
    return stats.load_dataset(name, root, **{**DATA, **overrides})


# ---------------------------------------------------------------- 1: duplicate rows


def test_duplicate_rows_are_dropped_with_a_count(tmp_path, caplog):
    lines = _ml_lines()
    _inter(tmp_path, "clean", lines)
    _inter(tmp_path, "twice", [row for row in lines for _ in range(2)])
    with caplog.at_level("WARNING"):
        twice = _load(tmp_path, "twice")
    assert f"dropped {len(lines)} rows repeating an earlier row's user_id, item_id, timestamp" \
        in caplog.text
    clean = _load(tmp_path, "clean")
    assert twice.inter_num == clean.inter_num
    # the held-out test item of every user is no longer a copy of its last input item
    test = twice.build()[2].inter_feat
    assert (test["item_id_list"][range(len(test)), test["item_length"] - 1]
            != test["item_id"]).float().mean() > 0.9


def test_duplicate_rows_are_refused_when_drop_duplicates_is_false(tmp_path):
    lines = _ml_lines()
    path = _inter(tmp_path, "twice", [row for row in lines for _ in range(2)])
    with pytest.raises(ValueError, match=f"{path}, line 3: {len(lines)} rows repeat an earlier "
                                         "row's user_id, item_id, timestamp .*drop_duplicates"):
        _load(tmp_path, "twice", drop_duplicates=False)


# ---------------------------------------------------------------- 3, 9: bad .inter files

LINES = _ml_lines(12)
BAD_FILES = [
    ("empty", "", [], "line 1: the file is empty"),
    ("header only", HEADER, [], "line 2: no interactions after the header"),
    ("no type", "user_id\titem_id\ttimestamp", LINES, "header field 'user_id' has no ':type'"),
    ("no time column", "user_id:token\titem_id:token", [r.rsplit("\t", 1)[0] for r in LINES],
     "line 1: no column 'timestamp' \\(TIME_FIELD\\)"),
    ("time as token", "user_id:token\titem_id:token\ttimestamp:token", LINES,
     "column timestamp is timestamp:token.*declare it timestamp:float"),
    ("missing times", HEADER, LINES[:3] + [LINES[3].rsplit("\t", 1)[0] + "\t", "1\t7\tn/a"]
     + LINES[4:], "line 5: column timestamp is empty or n/a in 2 of"),
    ("date strings", HEADER, LINES[:2] + ["1\t7\t2014-01-31"] + LINES[2:],
     "line 4: timestamp '2014-01-31' is not a number \\(text in 1 of \\d+ rows\\)"),
]


@pytest.mark.parametrize("header,lines,message", [b[1:] for b in BAD_FILES],
                         ids=[b[0] for b in BAD_FILES])
def test_bad_inter_file_names_file_line_and_fix(tmp_path, header, lines, message):
    path = _inter(tmp_path, "bad", lines, header)
    with pytest.raises(ValueError, match=message) as err:
        _load(tmp_path, "bad")
    assert str(path) in str(err.value) and "Fix:" in str(err.value)


def test_not_utf8_inter_file_names_the_line(tmp_path):
    path = _inter(tmp_path, "latin", LINES)
    path.write_bytes("\n".join([HEADER, "1\tcafé\t5", *LINES]).encode("latin-1"))
    with pytest.raises(ValueError, match=f"{path}, line 2: not utf-8 text"):
        _load(tmp_path, "latin")


def test_time_column_not_loaded_names_load_col(tmp_path):
    _inter(tmp_path, "d", LINES)
    with pytest.raises(ValueError, match="load_col loads .* but not TIME_FIELD 'timestamp'"):
        _load(tmp_path, "d", load_col={"inter": ["user_id", "item_id"]})


def test_everything_below_the_k_core_filter_gives_counts_and_keys(tmp_path):
    lines = [f"{u}\t{i}\t{t}" for u in range(1, 4) for t, i in enumerate(range(u, u + 4))]
    path = _inter(tmp_path, "small", lines)
    with pytest.raises(ValueError) as err:
        _load(tmp_path, "small", user_inter_num_interval="[5,inf)",
              item_inter_num_interval="[5,inf)")
    assert str(err.value) == (
        f"{path}: no interaction is left after RecBole's filters user_inter_num_interval=[5,inf) "
        "and item_inter_num_interval=[5,inf) (applied until every user and item left passes "
        "both). The file has 12 rows: 3 users with at most 4 interactions each, 6 items with at "
        "most 3. Fix: add data, or lower the filters, e.g. --user_inter_num_interval='[1,inf)' "
        "--item_inter_num_interval='[1,inf)'")


# ---------------------------------------------------------------- 4, 9: config keys


@pytest.mark.parametrize("key,value,message", [
    ("flush_denormal", "no", "'flush_denormal' must be True or False, got 'no'"),
    ("drop_duplicates", "yes", "'drop_duplicates' must be True or False, got 'yes'"),
    ("epochs", 0, "'epochs' must be an integer >= 1, got 0"),
    ("hidden_size", 0, "'hidden_size' must be a positive integer"),  # SIGMA's own key
])
def test_bad_keys_are_refused_before_any_data_is_read(tmp_path, key, value, message):
    config = dict(TINY_CONFIG, data_path=str(tmp_path), **{key: value})  # no data there
    with pytest.raises(ValueError, match=message):
        run("SIGMA", "nowhere", config_dict=config)


def test_flip_r_that_flips_nothing_warns_once(tmp_path):
    config = dict(TINY_CONFIG, data_path=str(tmp_path), MAX_ITEM_LIST_LENGTH=17)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        build_config("SIGMA", "ml-tiny", config_dict=dict(config, flip_r=15))  # flips 2 items
        build_config("SIGMA", "ml-tiny", config_dict=dict(config, flip_r=1000))
        build_config("SIGMA", "ml-tiny", config_dict=dict(config, flip_r=1000))
        build_config("SIGMA", "ml-tiny", config_dict=dict(config, flip_r=1000, use_flip=False))
    messages = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    assert [m for m in messages if "flip_r" in m] == [
        "flip_r=1000 >= MAX_ITEM_LIST_LENGTH - 1 = 16: the partial flip reverses the first "
        "n - flip_r items of a sequence of n <= MAX_ITEM_LIST_LENGTH items, so it reverses "
        "nothing and SIGMA's flipped branch sees the sequence in its own order. Lower flip_r "
        "(properties/model/SIGMA.yaml) or raise MAX_ITEM_LIST_LENGTH"]


def test_unknown_model_error_has_no_chained_import_error():
    with pytest.raises(ValueError, match="unknown model 'Foo'") as err:
        get_model("Foo")
    assert err.value.__cause__ is None and err.value.__suppress_context__


# ---------------------------------------------------------------- 7: NaN in the first epoch


def test_nan_in_first_epoch_names_no_checkpoint(workdir, tiny_config, monkeypatch):
    from recbole.model.sequential_recommender import SASRec  # the trainer's check: any model

    loss_fn = SASRec.calculate_loss
    monkeypatch.setattr(SASRec, "calculate_loss", lambda self, i: loss_fn(self, i) * float("nan"))
    with pytest.raises(ValueError, match="Training loss is NaN") as err:
        run("SASRec", "ml-tiny", config_dict=dict(tiny_config, n_layers=1))
    assert "No checkpoint was saved before." in str(err.value)
    assert "kept at" not in str(err.value) and not list(workdir.glob("saved/*.pth"))


# ---------------------------------------------------------------- 9: recommend


def test_recommend_on_a_cut_or_foreign_file_is_a_clear_error(tmp_path):
    whole = tmp_path / "whole.pth"
    torch.save({"config": {}, "state_dict": {"w": torch.zeros(1000)}}, whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[:2000])
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    for path in (cut, text):
        with pytest.raises(ValueError, match=f"{path} is not a readable checkpoint"):
            recommend(path, "1")
    with pytest.raises(SystemExit, match=f"error: {cut} is not a readable checkpoint"):
        recommend_main(["--checkpoint", str(cut), "--user", "1"])


# ---------------------------------------------------------------- 5: convert, then train


def test_convert_then_stats_and_train(tmp_path, workdir, capsys):
    csv = tmp_path / "good.csv"
    csv.write_text("".join(",".join(r.split("\t")) + "\n" for r in _slice_rows()))
    out = tmp_path / "out"
    assert cv.main(["--from-amazon-csv", str(csv), "--name", "amz", "--out", str(out)]) == 0
    assert stats.main(["--dataset", "amz", "--data-path", str(out)]) == 0
    assert "| amz | " in capsys.readouterr().out
    # SASRec: what matters here is the data (SIGMA's first use also compiles its CPU kernel)
    result = run("SASRec", "amz", config_dict=dict(RUN, data_path=str(out), n_layers=1))
    assert 0 <= result["test_result"]["ndcg@10"] <= result["test_result"]["hit@10"] <= 1


def test_not_found_advice_works(tmp_path, capsys):
    with pytest.raises(FileNotFoundError) as err:
        stats.load_dataset("mine", tmp_path)
    advice = str(err.value).split("place a RecBole atomic file at ")[1].split(" (columns")[0]
    write_slice(tmp_path, "mine", 40)
    assert Path(advice) == tmp_path / "mine" / "mine.inter"
    assert stats.main(["--dataset", "mine", "--data-path", str(tmp_path)]) == 0
    assert "| mine | " in capsys.readouterr().out


# ---------------------------------------------------------------- 8: converter input


def test_converter_refuses_names_with_paths(tmp_path, capsys):
    csv = tmp_path / "good.csv"
    csv.write_text("A,B,5,1\n")
    out = tmp_path / "1" / "2" / "3" / "out"
    for name in ("../../x", "a/b", ".."):
        assert cv.main(["--from-amazon-csv", str(csv), "--name", name, "--out", str(out)]) == 1
        assert f"dataset name {name!r} must be a plain name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.inter"))


def test_converter_refuses_empty_and_non_utf8_files(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("A,B,5,1\nCaf\xe9,B,4,2\n".encode("latin-1"))
    out = tmp_path / "out"
    for path, message in ((empty, "line 1: no interactions"), (latin, "line 2: not UTF-8 text")):
        assert cv.main(["--from-amazon-csv", str(path), "--name", "x", "--out", str(out)]) == 1
        assert f"{path}, {message}" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.inter"))


def test_more_workers_than_cores_warns_and_bad_jobs_are_refused(monkeypatch, caplog):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    with caplog.at_level(logging.WARNING, logger="recbole_sigma.parallel"):
        assert dict(parallel.run_parallel(abs, [-3], jobs=2)) == {0: 3}  # one task: one worker
        assert not caplog.records
        assert dict(parallel.run_parallel(abs, [-3, 4, -5], jobs=2)) == {0: 3, 1: 4, 2: 5}
    assert "--jobs 2 runs 2 processes on 1 CPU cores" in caplog.text
    assert "--jobs 1 uses each core once" in caplog.text
    with pytest.raises(ValueError, match="--jobs must be a whole number of at least 1, got 0"):
        parallel.check_jobs(0)
