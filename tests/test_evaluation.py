"""The one evaluation engine: grouped folds with spawned seeds, one result type, its JSON form."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alllib.data import load_dataset
from alllib.learn.evaluation import (
    Evaluation,
    Samples,
    cross_validate,
    fold_count,
    grouped_folds,
    inner_fold_count,
    results_from_json,
    results_to_json,
)


def _labels_groups(n_groups: int = 10, per_group: int = 3):
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    labels = np.repeat([i % 2 for i in range(n_groups)], per_group)
    return labels, groups


def test_folds_never_split_a_group_and_cover_every_image_once_per_repeat():
    y, g = _labels_groups()
    folds = grouped_folds(y, g, n_splits=5, n_repeats=3, seed=7)
    assert len(folds) == 15 and [f.index for f in folds] == list(range(15))
    for f in folds:
        assert not set(g[f.train]) & set(g[f.test]) and set(y[f.test]) == {0, 1}
    for r in range(3):
        assert sorted(np.concatenate([f.test for f in folds if f.repeat == r])) == list(range(len(y)))


def test_seeds_are_spawned_not_added():
    """Seed 0's second repeat is not seed 1's first (as it was with ``seed + repeat``), each fold
    has its own seed, and the same seed gives the same folds."""
    y, g = _labels_groups()
    a, b = grouped_folds(y, g, n_repeats=2, seed=0), grouped_folds(y, g, n_repeats=2, seed=1)
    second_of_a = [f.test.tolist() for f in a if f.repeat == 1]
    first_of_b = [f.test.tolist() for f in b if f.repeat == 0]
    assert second_of_a != first_of_b
    assert len({f.seed for f in a}) == len(a) and not {f.seed for f in a} & {f.seed for f in b}
    assert [f.test.tolist() for f in grouped_folds(y, g, n_repeats=2, seed=0)] == [f.test.tolist() for f in a]


def test_fold_rules():
    y, g = _labels_groups(n_groups=6)
    assert fold_count(y, g, 5) == 3 and inner_fold_count(y, g) == 3 and inner_fold_count(y[:6], g[:6]) == 0
    with pytest.raises(ValueError, match="class 0 has 1 group"):
        fold_count([0, 0, 1, 1], ["a", "a", "b", "c"], 5)


def test_cross_validate_gives_every_fitter_the_same_folds_and_pools_them():
    ds = load_dataset("synthetic", n=24, size=32, verbose=False)
    seen = {"a": [], "b": []}

    def fitter(name):
        def fit(train, test, fold):
            seen[name].append((tuple(test.ids), fold.seed))
            assert not set(train.groups) & set(test.groups)
            return np.where(test.labels == 1, 1.0, -1.0) if name == "a" else np.zeros(len(test)) - 1
        return fit

    res = cross_validate(ds, {"a": fitter("a"), "b": fitter("b")}, n_splits=3, n_repeats=2, seed=5, progress=False)
    assert seen["a"] == seen["b"] and len(seen["a"]) == 6
    assert res["a"].settings["n_splits"] == 3 and res["a"].repeats == [0, 1]
    pooled = res["a"].pooled(1)
    assert len(pooled) == len(ds) and pooled["id"].is_unique and (pooled["y_pred"] == pooled["y_true"]).all()
    assert res["a"].summary().loc["accuracy", "value"] == 1.0 and res["b"].summary().loc["specificity", "value"] == 1.0
    assert all(e.n_train + len(e.test_ids) == len(ds) for e in res["a"].evaluations)


def test_results_survive_their_json_form():
    """The protocol memo's format: plain JSON (no code runs when it is read), the same numbers back."""
    import json

    grid = pd.DataFrame({"C": [1.0, 10.0], "mean_test_score": [0.5, 0.75]})
    e = Evaluation("svm", np.array([0, 1]), np.array([0, 0]), np.array([-0.5, -0.1]), np.array(["x", "y"], object),
                   {"accuracy": 0.5, "tp": 0}, {"shared_source": 0}, None, {"C": 10.0}, grid, 0, object(), 1.5,
                   repeat=0, groups=np.array(["g1", "g2"], object), n_train=8)
    from alllib.learn.evaluation import ProtocolResult

    back = results_from_json(json.loads(json.dumps(results_to_json(
        {"svm": ProtocolResult("honest", "svm", [e], {"seed": 0})}))))["svm"]
    b = back.evaluations[0]
    assert b.model is None and b.metrics == e.metrics and b.best_params == {"C": 10.0} and b.n_train == 8
    assert np.array_equal(b.scores, e.scores) and list(b.test_ids) == ["x", "y"] and list(b.groups) == ["g1", "g2"]
    pd.testing.assert_frame_equal(b.grid, grid)
    assert back.settings == {"seed": 0} and back.protocol == "honest"


def _recipe_fitter(calls: list, *, fail_at: int | None = None, recipe="a perfect oracle"):
    """A fitter that scores every test image right, counts its fits, may fail at its ``fail_at``-th
    fit (a run killed midway), and carries ``recipe`` (:func:`alllib.memo.recipe`)."""
    def fit(train, test, fold):
        calls.append(fold.index)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("killed")
        return np.where(test.labels == 1, 1.0, -1.0) + fold.seed % 7 / 100

    fit.recipe = recipe
    return fit


def test_a_checkpointed_evaluation_killed_midway_resumes_at_the_next_fit(tmp_path):
    """The fits that ended before the kill are taken from the checkpoint, the others are fitted,
    and the results are those of a run that was never killed (the history of a network as well)."""
    ds = load_dataset("synthetic", n=24, size=32, verbose=False)
    settings = dict(n_splits=3, n_repeats=2, seed=5, progress=False)
    plain = cross_validate(ds, {"a": _recipe_fitter([])}, **settings)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        cross_validate(ds, {"a": _recipe_fitter(calls, fail_at=4)}, checkpoint=tmp_path, **settings)
    assert calls == [0, 1, 2, 3] and len(list(tmp_path.glob("*.json.gz"))) == 3
    calls = []
    resumed = cross_validate(ds, {"a": _recipe_fitter(calls)}, checkpoint=tmp_path, **settings)
    assert calls == [3, 4, 5]  # fold 3 again (it never ended), then the rest
    for p, r in zip(plain["a"].evaluations, resumed["a"].evaluations):
        assert np.array_equal(p.scores, r.scores) and list(p.test_ids) == list(r.test_ids)
        assert (p.fold, p.repeat, p.n_train, p.metrics) == (r.fold, r.repeat, r.n_train, r.metrics)
    calls = []
    cross_validate(ds, {"a": _recipe_fitter(calls)}, checkpoint=tmp_path, **settings)
    assert calls == []  # everything kept


def test_a_checkpoint_is_found_only_by_the_same_data_fitter_and_folds(tmp_path):
    ds = load_dataset("synthetic", n=24, size=32, verbose=False)
    settings = dict(n_splits=3, seed=5, progress=False, checkpoint=tmp_path)
    cross_validate(ds, {"a": _recipe_fitter([])}, **settings)

    def fits(data=ds, name="a", recipe="a perfect oracle", **changed):
        calls = []
        cross_validate(data, {name: _recipe_fitter(calls, recipe=recipe)}, **{**settings, **changed})
        return len(calls)

    assert fits() == 0
    assert fits(recipe="another oracle") == 3 and fits(name="b") == 3 and fits(seed=6) == 3
    other = load_dataset("synthetic", n=24, size=32, verbose=False)
    other.table["group"] = other.table["group"].astype(str) + "x"  # the same images, other groups
    assert fits(data=other) == 3
    assert fits(recipe=None) == 3 and fits(recipe=None) == 3  # no recipe: always fitted, never kept
    assert fits(checkpoint=False) == 3


def test_a_damaged_checkpoint_is_fitted_again(tmp_path, capsys):
    ds = load_dataset("synthetic", n=24, size=32, verbose=False)
    settings = dict(n_splits=3, seed=5, progress=False, checkpoint=tmp_path)
    cross_validate(ds, {"a": _recipe_fitter([])}, **settings)
    damaged = sorted(tmp_path.glob("*.json.gz"))[0]
    damaged.write_bytes(b"not gzip")
    calls = []
    cross_validate(ds, {"a": _recipe_fitter(calls)}, **settings)
    assert len(calls) == 1 and "ignoring the unreadable memo" in capsys.readouterr().out


def test_an_evaluation_keeps_its_training_history_in_json():
    from alllib.learn.evaluation import ProtocolResult, score_evaluation

    history = pd.DataFrame({"train loss": [0.7, 0.5], "validation loss": [0.6, 0.65],
                            "train images/s": [10.0, 20.0]}, index=pd.Index([1, 2], name="epoch"))
    e = score_evaluation("fine-tuned", [0, 1], [-1.0, 2.0], ["x", "y"], history=history, best_params={"epoch": 1})
    back = results_from_json(results_to_json({"ft": ProtocolResult("candidates", "ft", [e], {})}))["ft"]
    pd.testing.assert_frame_equal(back.evaluations[0].history, history, check_names=False)
    assert back.evaluations[0].best_params == {"epoch": 1}


def test_the_code_digest_follows_what_computes_not_what_shows(tmp_path, monkeypatch):
    """Memos are invalidated by a change to a module that computes a result (the book's candidates
    included), not by one to a sentence or a figure."""
    import shutil

    import alllib.memo as memo

    package = tmp_path / "alllib"
    shutil.copytree(Path(memo.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(memo, "__file__", str(package / "memo.py"))
    before = memo.source_digest()
    for shown in memo.DISPLAY_ONLY:
        (package / shown).write_text((package / shown).read_text() + "\n# a new sentence\n")
    assert memo.source_digest() == before
    (package / "learn" / "candidates.py").write_text((package / "learn" / "candidates.py").read_text() + "\n# x\n")
    assert memo.source_digest() != before


def test_the_engine_takes_rows_of_an_array_as_it_takes_a_dataset():
    """Code that holds features (train's grouped report, the attribution study) runs on the same
    folds as code that holds images, and each fit sees only its training rows."""
    ds = load_dataset("synthetic", n=24, seed=0, verbose=False)
    X = np.random.default_rng(0).normal(size=(len(ds), 5))
    seen = {"dataset": [], "arrays": []}

    def fitter(kind):
        def fit(train, test, fold):
            seen[kind].append((sorted(train.ids.tolist()), sorted(test.ids.tolist())))
            if kind == "arrays":
                assert np.array_equal(train.X, X[train.ids]) and np.array_equal(test.X, X[test.ids])
            return np.zeros(len(test))
        return fit

    ds = ds.subset(range(len(ds)))
    ds.table["id"] = np.arange(len(ds))  # positions, as Samples' ids are
    a = cross_validate(ds, {"m": fitter("dataset")}, n_splits=3, seed=5, progress=False)["m"]
    b = cross_validate(Samples.of(X, ds.labels, ds.groups), {"m": fitter("arrays")}, n_splits=3, seed=5,
                       progress=False)["m"]
    assert seen["dataset"] == seen["arrays"] and len(seen["arrays"]) == 3
    assert all(not set(tr) & set(te) for tr, te in seen["arrays"])
    assert [e.n_train for e in a.evaluations] == [e.n_train for e in b.evaluations]
