"""Top-k recommendation from a saved checkpoint, and its errors."""

import pytest
from conftest import ML100K, write_slice

from recbole_sigma.quick_start import run
from recbole_sigma.recommend import main, recommend

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory):
    """A SIGMA checkpoint from one epoch on its own copy of the tiny slice."""
    root = tmp_path_factory.mktemp("rec")
    write_slice(root / "data", "ml-tiny", 40)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        config = dict(tiny_config, data_path=str(root / "data"))
        result = run("SIGMA", "ml-tiny", config_dict=config)
        yield root, str(root / result["saved_model_file"])


def _history(user: str) -> set[str]:
    rows = (line.split("\t") for line in ML100K.read_text().splitlines()[1:])
    return {r[1] for r in rows if r[0] == user}


def test_recommend_returns_unseen_items(trained, capsys):
    root, checkpoint = trained
    items = recommend(checkpoint, "7", topk=10)
    assert len(items) == 10 and len({i for i, _ in items}) == 10
    assert not {i for i, _ in items} & _history("7")
    scores = [s for _, s in items]
    assert scores == sorted(scores, reverse=True)
    main(["--checkpoint", checkpoint, "--user", "7", "--topk", "3"])
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


def test_unknown_user_and_wrong_dataset_are_clear_errors(trained):
    root, checkpoint = trained
    with pytest.raises(KeyError, match="unknown user '999'"):
        recommend(checkpoint, "999")
    with pytest.raises(ValueError, match="trained on dataset 'ml-tiny', not 'amazon-beauty'"):
        recommend(checkpoint, "7", dataset="amazon-beauty")
    with pytest.raises(SystemExit, match="error: unknown user"):
        main(["--checkpoint", checkpoint, "--user", "999"])


def test_checkpoint_of_other_data_is_a_clear_error(trained):  # last: it rewrites the data
    root, checkpoint = trained
    write_slice(root / "data", "ml-tiny", 80)  # the files changed: more items than trained on
    with pytest.raises(ValueError, match="does not match dataset 'ml-tiny'"):
        recommend(checkpoint, "7")
