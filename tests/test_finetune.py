"""Fine-tuning: the right layers train, early stopping keeps the best epoch, errors are clear."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alllib.learn.finetune import FineTuner


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        FineTuner(batch_size=0).check_params()
    with pytest.raises(ValueError, match="validation"):
        FineTuner(validation=1.5).check_params()


@pytest.mark.slow
def test_a_short_fine_tuning_on_synthetic_smears():
    pytest.importorskip("keras")
    from alllib.data import load_dataset

    ds = load_dataset("synthetic", n=24, size=64, verbose=False)
    tuner = FineTuner(epochs=2, batch_size=8, size=64, weights=None, seed=1).fit(ds)
    trainable = {w.path.split("/")[0] for w in tuner.model_.trainable_weights}
    assert "logit" in trainable and "head_conv" in trainable and "stem_conv" not in trainable
    assert not any("bn" in name for name in trainable)  # batch normalisation stays frozen
    h = tuner.history_
    assert len(h) >= 1 and (h["train images/s"] > 0).all()
    assert tuner.best_epoch_ == h["validation loss"].idxmin()
    scores = tuner.decision_function(ds.subset(range(5)))
    assert scores.shape == (5,) and np.isfinite(scores).all()
    assert tuner.embed(ds.subset(range(2))).shape == (2, 1280)
    with pytest.raises(ValueError, match="names no layer"):
        FineTuner(trainable_from="nothing", size=64, weights=None).fit(ds)


@pytest.mark.slow
def test_few_groups_shrink_the_validation_split_and_one_group_skips_it():
    """Four subjects (two per class) allow a 2-fold grouped validation split, not 5; a class with a
    single subject allows none: every epoch runs and the last is kept (both used to fail)."""
    pytest.importorskip("keras")
    from alllib.data import load_dataset

    ds = load_dataset("synthetic", n=16, size=64, verbose=False)
    ds.table["group"] = [f"{label}-{(i // 2) % 2}" for i, label in enumerate(ds.labels)]  # two per class
    tuner = FineTuner(epochs=2, batch_size=8, size=64, weights=None, seed=1).fit(ds)
    assert tuner.history_["validation loss"].notna().all()
    ds.table["group"] = ds.labels.astype(str)
    tuner = FineTuner(epochs=2, batch_size=8, size=64, weights=None, seed=1).fit(ds)
    assert len(tuner.history_) == 2 and tuner.history_["validation loss"].isna().all() and tuner.best_epoch_ == 2


def test_the_training_report_reads_the_folds_histories():
    """From a fine-tuned candidate's result (fits taken from a checkpoint included): one block per
    fold, the median speed of the epochs after the first, and the epoch kept in each fold."""
    from alllib.book.prose import training_sentence
    from alllib.learn.evaluation import ProtocolResult, score_evaluation
    from alllib.learn.finetune import training_report

    def fold(k, speeds, kept):
        h = pd.DataFrame({"train loss": 0.5, "validation loss": 0.4, "train images/s": speeds},
                         index=range(1, len(speeds) + 1))  # as read back from JSON: no index name
        e = score_evaluation("ft", [0, 1], [-1.0, 1.0], ["a", "b"], history=h, best_params={"epoch": kept})
        e.fold = k
        return e

    result = ProtocolResult("candidates", "ft", [fold(0, [1.0, 30.0, 40.0], 2), fold(1, [2.0, 50.0], 1)], {})
    history, speed = training_report(result)
    assert list(history.index.names) == ["fold", "epoch"] and len(history) == 5
    assert speed == 40.0  # the median of 30, 40 and 50: the first epochs are left out
    assert "kept epoch 2, 1 of at most 3 in the 2 folds" in training_sentence(result, speed, 3)
    from alllib.book.prose import training_sentences

    frozen = ProtocolResult("candidates", "frozen", [score_evaluation("frozen", [0, 1], [-1.0, 1.0], ["a", "b"])], {})
    said = training_sentences({"frozen": frozen, "fine-tuned Lite0": result}, 3)
    assert said == "fine-tuned Lite0: " + training_sentence(result, speed, 3)
    assert training_sentences({"frozen": frozen}, 3) == ""


def test_a_finetuned_candidate_has_a_recipe_of_its_settings():
    from alllib.augmentation import Augmenter
    from alllib.learn.finetune import finetuned

    a, b = finetuned(epochs=2, augmenter=Augmenter(hue=0.04)), finetuned(epochs=2, augmenter=Augmenter())
    assert a.recipe != b.recipe and a.recipe == finetuned([], epochs=2, augmenter=Augmenter(hue=0.04)).recipe


@pytest.mark.slow
def test_the_last_fold_network_is_fitted_again_where_every_fold_came_from_a_checkpoint():
    pytest.importorskip("keras")
    from alllib.data import load_dataset
    from alllib.learn.evaluation import grouped_folds
    from alllib.learn.finetune import finetuned, last_fold_network

    ds = load_dataset("synthetic", n=16, size=64, verbose=False)
    settings = dict(epochs=1, batch_size=8, size=64, weights=None)
    fitted = FineTuner(**settings)
    assert last_fold_network(ds, [object(), fitted], n_splits=2, **settings) is fitted
    again = last_fold_network(ds, [], n_splits=2, seed=3, **settings)
    fold = grouped_folds(ds.labels, ds.groups, n_splits=2, seed=3)[-1]
    assert again.seed == fold.seed and len(again.history_) == 1
    # the log keeps the last network fitted, not every fold's (each holds its optimiser's state)
    log = []
    candidate = finetuned(log, **settings)
    for f in grouped_folds(ds.labels, ds.groups, n_splits=2, seed=3):
        candidate(ds.subset(f.train), ds.subset(f.test), f.seed)
        assert len(log) == 1 and log[0].seed == f.seed


def test_a_person_balanced_epoch_gives_every_person_the_same_weight():
    """Each epoch draws as many images of each person as the mean person has: a person of 2 cells
    counts as much as one of 40 (drawn with replacement), and nobody's images are left out."""
    from alllib.learn.finetune import FineTuner, epoch_order

    groups = np.array(["big"] * 40 + ["small"] * 2 + ["mid"] * 12)
    train = np.arange(len(groups))
    order = epoch_order(train, groups, np.random.default_rng(1), person_balanced=True)
    counts = {g: int((groups[order] == g).sum()) for g in ("big", "small", "mid")}
    assert counts == {"big": 18, "small": 18, "mid": 18}
    plain = epoch_order(train, groups, np.random.default_rng(1))
    assert sorted(plain.tolist()) == train.tolist()
    with pytest.raises(ValueError, match="person_balanced"):
        FineTuner(person_balanced="yes").check_params()


@pytest.mark.slow
def test_a_fit_apart_is_the_fit_here_and_hands_back_its_network():
    """Fitted in a child process (TensorFlow keeps what it trains in a process): the same logits,
    history and kept epoch as the fit in this process, from the same seed, and the trained network."""
    pytest.importorskip("keras")
    from alllib.data import load_dataset
    from alllib.learn.finetune import fit_apart

    ds = load_dataset("synthetic", n=16, size=64, verbose=False)
    train, test = ds.subset(range(12)), ds.subset(range(12, 16))
    settings = dict(epochs=2, batch_size=8, size=64, weights=None, seed=5)
    here = FineTuner(**settings).fit(train)
    apart = FineTuner(**settings)
    logits = fit_apart(apart, train, test)
    np.testing.assert_allclose(logits, here.decision_function(test), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(apart.decision_function(test), logits, rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(apart.history_.drop(columns="train images/s"),
                                  here.history_.drop(columns="train images/s"), rtol=1e-4)
    assert apart.best_epoch_ == here.best_epoch_


@pytest.mark.slow
def test_a_child_that_fails_says_why():
    pytest.importorskip("keras")
    from alllib.data import load_dataset
    from alllib.learn.finetune import fit_apart

    ds = load_dataset("synthetic", n=8, size=64, verbose=False)
    tuner = FineTuner(epochs=1, size=64, weights=None, trainable_from="block99")
    with pytest.raises(RuntimeError, match="child process failed.*block99"):
        fit_apart(tuner, ds.subset(range(6)), ds.subset(range(6, 8)))
