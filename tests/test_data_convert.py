"""recbole_sigma.data: exact small conversions, bad files, real data through RecBole."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import yaml

from recbole_sigma.data import DataFormatError, readers, require_dataset
from recbole_sigma.data import convert as cv
from recbole_sigma.data.paths import PROPERTIES_DIR, SOURCES, default_source

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"
SHARED = default_source()
needs_shared = pytest.mark.skipif(
    not (SHARED / "amazon-beauty" / "Beauty_with_time.tsv.gz").is_file(),
    reason=f"shared datasets not found at {SHARED} (set SIGMA_DATA_SOURCE)",
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _inter(root: Path, name: str) -> str:
    return (root / name / f"{name}.inter").read_text(encoding="utf-8")


# ---------------------------------------------------------------- exact small conversions


def test_s3rec_positions_as_time(tmp_path):
    src = _write(tmp_path / "src" / "yelp" / "Yelp.txt", "1 5 3 5\n2 7 8 9 1\n")
    s = cv.convert_dataset("yelp", tmp_path / "src", tmp_path / "out")
    assert _inter(tmp_path / "out", "yelp") == HEADER + (
        "1\t5\t1\n1\t3\t2\n1\t5\t3\n2\t7\t1\n2\t8\t2\n2\t9\t3\n2\t1\t4\n")
    assert (s.users, s.items, s.interactions) == (2, 6, 7)
    assert src.is_file()


def test_ml1m_pairs(tmp_path):
    _write(tmp_path / "src" / "ml-1m" / "ml-1m.txt", "1 1\n1 2\n1 1\n2 3\n")
    cv.convert_dataset("ml-1m", tmp_path / "src", tmp_path / "out")
    assert _inter(tmp_path / "out", "ml-1m") == HEADER + "1\t1\t1\n1\t2\t2\n1\t1\t3\n2\t3\t1\n"


def test_timed_tsv_ties_keep_file_order(tmp_path):
    text = ("user_id\titem_id\ttimestamp\n1\t10\t1318896000\n1\t11\t1318896000\n"
            "1\t12\t1318896000\n2\t10\t1328140800\n1\t13\t1328140800\n")
    _write(tmp_path / "src" / SOURCES["amazon-beauty"].path, text)
    s = cv.convert_dataset("amazon-beauty", tmp_path / "src", tmp_path / "out")
    out = _inter(tmp_path / "out", "amazon-beauty")
    assert out == HEADER + ("1\t10\t1318896000\n1\t11\t1318896128\n1\t12\t1318896256\n"
                            "2\t10\t1328140800\n1\t13\t1328140800\n")
    assert s.raised == 2
    times = np.array([float(r.split("\t")[2]) for r in out.splitlines()[1:]])
    assert np.array_equal(times.astype(np.float32).astype(np.float64), times)  # float32-exact


def test_amazon_csv_stable_sort(tmp_path):
    src = _write(tmp_path / "ratings.csv", "A2,B9,5.0,1388620800\nA1,B1,4.0,1388620800\n"
                 "A2,B1,3.0,1388534400\nA1,B2,5.0,1388534400\nA1,B3,1.0,1388620800\n")
    assert cv.main(["--from-amazon-csv", str(src), "--name", "beauty-raw",
                    "--out", str(tmp_path / "out")]) == 0
    assert _inter(tmp_path / "out", "beauty-raw") == HEADER + (
        "A2\tB1\t1388534400\nA2\tB9\t1388620800\n"
        "A1\tB2\t1388534400\nA1\tB1\t1388620800\nA1\tB3\t1388620928\n")


def test_movielens_dat_stable_sort_float32(tmp_path):
    src = _write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978300760\n"
                 "1::914::3::978300700\n2::1357::5::978301000\n")
    cv.convert_movielens_dat(src, "ml-raw", tmp_path / "out")
    # seconds are rounded to float32 (64 s steps near 1e9), as RecBole would; ties raised
    assert _inter(tmp_path / "out", "ml-raw") == HEADER + (
        "1\t914\t978300672\n1\t1193\t978300736\n1\t661\t978300800\n2\t1357\t978300992\n")


# ---------------------------------------------------------------- bad files

BAD = [
    ("s3rec", "1 2 3\n4\n", 2, "column"),
    ("s3rec", "1 2 3\n2 x 3\n", 2, "'x' is not"),
    ("s3rec", "1 2 3\n\n2 3 4\n", 2, "empty line"),
    ("s3rec", "user_id item_id\n1 2\n", 1, "header"),
    ("s3rec", "1 2 3\n1 4 5\n", 2, "already has a line"),
    ("pairs", "1 2\n2 3\n1 4\n", 3, "reappears"),
    ("pairs", "1 2 3\n", 1, "expected 2 columns"),
    ("tsv", "user_id\titem_id\ttimestamp\n1\t2\t5\nuser_id\titem_id\ttimestamp\n", 3,
     "duplicate header"),
    ("tsv", "1\t2\n", 1, "expected 3 columns"),
    ("tsv", "1\t2\tnoon\n", 1, "timestamp 'noon'"),
    ("csv", "A1,B1,5.0\n", 1, "expected 4 columns"),
    ("csv", "A1,B1,5.0,1\nuser,item,rating,timestamp\n", 2, "duplicate header"),
    ("dat", "1::2::5::9\n1::b::5::9\n", 2, "item id 'b'"),
]
READ = {"s3rec": readers.read_s3rec, "pairs": readers.read_pairs,
        "tsv": readers.read_timed_tsv, "csv": readers.read_amazon_csv,
        "dat": readers.read_movielens_dat}


@pytest.mark.parametrize("fmt,text,line,problem", BAD)
def test_bad_file_names_file_and_line(tmp_path, fmt, text, line, problem):
    path = _write(tmp_path / f"bad.{fmt}", text)
    with pytest.raises(DataFormatError) as err:
        READ[fmt](path)
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and err.value.line == line
    assert str(path) in msg and f"line {line}:" in msg and problem in msg and "Fix:" in msg


def test_cli_reports_bad_file(tmp_path, capsys):
    src = _write(tmp_path / "r.dat", "1::2::5\n")
    assert cv.main(["--from-movielens-dat", str(src), "--name", "x",
                    "--out", str(tmp_path)]) == 1
    assert f"{src}, line 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cv.main(["--from-movielens-dat", str(src)])  # --name missing


# ---------------------------------------------------------------- require_dataset, yaml


def test_require_dataset_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        require_dataset("amazon-beauty", str(tmp_path / "dataset" / "amazon-beauty"))
    msg = str(err.value)
    assert str(tmp_path / "dataset" / "amazon-beauty" / "amazon-beauty.inter") in msg
    assert (f"python -m recbole_sigma.data.convert --dataset amazon-beauty --out "
            f"{tmp_path / 'dataset'}") in msg
    assert "--from-amazon-csv" in msg and "--from-movielens-dat" in msg
    with pytest.raises(FileNotFoundError, match="--from-movielens-dat"):
        require_dataset("my-data", str(tmp_path / "my-data"))
    _write(tmp_path / "d" / "d.inter", HEADER)
    require_dataset("d", str(tmp_path / "d"))


def test_require_dataset_bundled_ml100k():
    recbole = pytest.importorskip("recbole")
    require_dataset("ml-100k", str(Path(recbole.__file__).parent / "dataset_example" / "ml-100k"))


@pytest.mark.parametrize("name,max_len", [("amazon-beauty", 50), ("amazon-sports", 50),
                                          ("amazon-games", 50), ("yelp", 100), ("ml-1m", 200),
                                          ("ml-100k", 50), ("_sequential", 50)])
def test_properties_yaml(name, max_len):
    cfg = yaml.safe_load((PROPERTIES_DIR / f"{name}.yaml").read_text())
    assert cfg["MAX_ITEM_LIST_LENGTH"] == max_len
    assert cfg["load_col"] == {"inter": ["user_id", "item_id", "timestamp"]}
    assert cfg["user_inter_num_interval"] == cfg["item_inter_num_interval"] == "[5,inf)"
    assert cfg["eval_args"] == {"split": {"LS": "valid_and_test"}, "order": "TO",
                                "group_by": "user", "mode": "full"}
    assert cfg["train_neg_sample_args"] is None and cfg["loss_type"] == "CE"
    assert cfg["valid_metric"] == "NDCG@10" and cfg["topk"] == [10]


# ---------------------------------------------------------------- real data through RecBole


def _beauty_sequences(users: int | None = None) -> list[list[str]]:
    seqs = []
    with open(SHARED / "amazon-beauty" / "Beauty.txt", encoding="utf-8") as f:
        for line in f:
            seqs.append(line.split()[1:])
            if users is not None and len(seqs) == users:
                break
    return seqs


def _check_recbole_order(ds, seqs: list[list[str]], max_len: int) -> None:
    """RecBole's test split holds, per user, the last max_len items before the target."""
    _, valid, test = ds.build()
    for split, offset in ((test, 0), (valid, 1)):
        feat = split.inter_feat
        users = ds.id2token("user_id", feat["user_id"].numpy())
        targets = ds.id2token("item_id", feat["item_id"].numpy())
        lists, lens = feat["item_id_list"].numpy(), feat["item_length"].numpy()
        assert len(users) == len(seqs)
        for u, target, row, n in zip(users, targets, lists, lens, strict=True):
            seq = seqs[int(u) - 1][: len(seqs[int(u) - 1]) - offset]
            assert target == seq[-1]
            assert list(ds.id2token("item_id", row[:n])) == seq[:-1][-max_len:]


@needs_shared
def test_real_beauty_slice_order_in_recbole(tmp_path):
    keep = {str(u) for u in range(1, 301)}
    with gzip.open(SHARED / SOURCES["amazon-beauty"].path, "rt", encoding="utf-8") as f:
        rows = [r for r in f if r.split("\t")[0] in keep or r.startswith("user_id")]
    _write(tmp_path / "src" / SOURCES["amazon-beauty"].path, "".join(rows))
    s = cv.convert_dataset("amazon-beauty", tmp_path / "src", tmp_path / "out")
    seqs = _beauty_sequences(300)
    assert s.interactions == sum(map(len, seqs)) and s.raised > 0  # the slice has ties
    from recbole_sigma.data.stats import load_dataset

    # no 5-core filter on a slice (it would drop items); a long max length to see everything
    ds = load_dataset("amazon-beauty", tmp_path / "out", MAX_ITEM_LIST_LENGTH=300,
                      user_inter_num_interval=None, item_inter_num_interval=None)
    assert ds.inter_num == s.interactions and ds.user_num == 301
    _check_recbole_order(ds, seqs, 300)


@needs_shared
def test_full_beauty_in_recbole(tmp_path):
    cv.convert_dataset("amazon-beauty", SHARED, tmp_path)
    from recbole_sigma.data.stats import load_dataset

    ds = load_dataset("amazon-beauty", tmp_path)
    assert (ds.user_num, ds.item_num, ds.inter_num) == (22_364, 12_102, 198_502)
    _check_recbole_order(ds, _beauty_sequences(), 50)
