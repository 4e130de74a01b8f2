"""Fine-tuning: the right layers train, early stopping keeps the best epoch, errors are clear."""
from __future__ import annotations

import numpy as np
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
