"""Fine-tuning EfficientNet-Lite (Lite0 by default; Lite1, Lite2) on the training side only, on a CPU.

:class:`FineTuner` starts from the ImageNet weights, adds a dropout and a one-logit head on the
pooled features, and trains the head with the network's last blocks (``trainable_from``; batch
normalisation stays frozen, as usual with small batches; ``trainable_from="block10"`` trains more of
the network than the default ``"block14"``), with each class weighing the same in the loss;
``precision="bfloat16"`` trains under Keras' ``mixed_bfloat16`` policy (see
:func:`alllib.features.precision_policy`). Each epoch sees every training image once through
``augmenter`` (default: the paper's augmentation; an :class:`~alllib.augmentation.Augmenter` with
``hed`` and ``hue`` adds stain jitter), drawn afresh (no copies are stored). A grouped inner
split (no slide or subject on both sides) holds out ``validation`` of the training groups for
early stopping: training stops after ``patience`` epochs without a lower validation loss, and
the best epoch's weights are kept (where a class has a single group, nothing can be held out:
every epoch runs and the last is kept). ``person_balanced=True`` draws each epoch's images so that
every person (group) weighs the same (:func:`epoch_order`). Training speed (images per second of
the training steps) is recorded in ``history_``.

>>> FineTuner(epochs=0).check_params()
Traceback (most recent call last):
...
alllib.errors.ParameterError: FineTuner: epochs must be a positive integer, not 0
"""
from __future__ import annotations

import numbers
import os
import pickle
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedGroupKFold

from alllib.augmentation import Augmenter
from alllib.constraints import BOOLEAN, SEED, InstanceOf, Interval, Options, count, validate_estimator
from alllib.data import Dataset
from alllib.features import import_keras, precision_policy
from alllib.features.backbones import BACKBONES, weights_info
from alllib.features.efficientnet_lite import VARIANTS
from alllib.features.extract import TRANSFORM_PARAMETERS
from alllib.features.keras import PRECISIONS, forward
from alllib.learn.evaluation import Evaluation, ProtocolResult, grouped_folds, score_evaluation
from alllib.memo import with_recipe
from alllib.preprocessing import imagenet_preprocess, resize

__all__ = ["FineTuner", "finetuned", "fit_apart", "last_fold_network", "training_report", "epoch_order"]


class FineTuner(BaseEstimator):
    """EfficientNet-Lite (``backbone``) fine-tuned end to end from ``trainable_from`` on (see module docstring).

    A scikit-learn estimator whose samples are a :class:`~alllib.data.Dataset`: the constructor
    stores the parameters, :meth:`check_params` (called by :meth:`fit`) checks them, and what is
    learnt ends in ``_`` (``model_``, ``history_``, ``best_epoch_``)."""

    def __init__(self, *, epochs: int = 3, batch_size: int = 16, learning_rate: float = 3e-4,
                 trainable_from: str = "block14", validation: float = 0.2, patience: int = 2,
                 augmenter: Augmenter | None = None, size: int = 224, weights="imagenet", precision: str = "float32",
                 backbone: str = "efficientnet_lite0", person_balanced: bool = False, seed: int = 0):
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.trainable_from, self.validation, self.patience = trainable_from, validation, patience
        self.augmenter, self.size, self.weights, self.seed = augmenter, size, weights, seed
        self.precision, self.backbone, self.person_balanced = precision, backbone, person_balanced

    _parameter_constraints = {
        "epochs": [count()], "batch_size": [count()], "learning_rate": [Interval(numbers.Real, 0, None, "neither")],
        "trainable_from": [str], "validation": [Interval(numbers.Real, 0, 1, "neither")], "patience": [count()],
        "augmenter": [None, InstanceOf(Augmenter, "an Augmenter")], "size": TRANSFORM_PARAMETERS["size"],
        "weights": [str, os.PathLike, None], "precision": [Options(PRECISIONS)], "backbone": [Options(tuple(VARIANTS))],
        "person_balanced": [BOOLEAN], "seed": [SEED],
    }

    def check_params(self) -> "FineTuner":
        """Raise :class:`~alllib.errors.ParameterError` naming the first parameter not allowed."""
        return validate_estimator(self)

    def _build(self):
        from alllib.features.efficientnet_lite import build_efficientnet_lite

        keras = import_keras()
        keras.utils.set_random_seed(self.seed)
        with precision_policy(self.precision):
            base = build_efficientnet_lite(self.backbone, weights=self.weights, input_shape=(self.size, self.size, 3))
        names = [layer.name for layer in base.layers]
        starts = [i for i, n in enumerate(names) if n.startswith(self.trainable_from)]
        if not starts:
            raise ValueError(f"trainable_from={self.trainable_from!r} names no layer; layers are named like "
                             "'block14_expand_conv', 'head_conv'")
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= starts[0] and not isinstance(layer, keras.layers.BatchNormalization)
        # the head computes in float32 whatever the backbone's precision, so the loss is float32
        pooled = keras.layers.Dropout(0.2, name="dropout")(base.output)
        logit = keras.layers.Dense(1, name="logit", dtype="float32")(pooled)
        self.model_ = keras.Model(base.input, logit)
        self.embedder_ = base
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                            loss=keras.losses.BinaryCrossentropy(from_logits=True))

    def _pixels(self, ds: Dataset) -> list[np.ndarray]:
        return [resize(ds.image(i), self.size) for i in range(len(ds))]

    def _inputs(self, pixels) -> np.ndarray:
        return np.stack([imagenet_preprocess(p, "lite") for p in pixels])

    def fit(self, ds: Dataset) -> "FineTuner":
        """Train on ``ds`` (labels and groups from its table), early-stopped on a grouped inner split."""
        self.check_params()
        return self.fit_pixels(self._pixels(ds), ds.labels, ds.groups)

    def fit_pixels(self, pixels: list[np.ndarray], y, groups) -> "FineTuner":
        """:meth:`fit` on images already resized to ``size`` (``uint8`` RGB), with their labels and groups."""
        self.check_params()
        y, groups = np.asarray(y), np.asarray(groups)
        fewest = min(len(np.unique(groups[y == c])) for c in np.unique(y))
        if fewest >= 2:  # never more validation folds than the groups allow
            k = min(max(2, round(1 / self.validation)), fewest)
            train, val = next(StratifiedGroupKFold(k, shuffle=True, random_state=self.seed).split(
                np.zeros(len(y)), y, groups))
        else:  # a class with one group cannot be held out: every epoch runs and the last is kept
            train, val = np.arange(len(y)), np.zeros(0, int)
        self._build()
        x_val = self._inputs([pixels[i] for i in val]) if len(val) else None
        augmenter = self.augmenter or Augmenter(seed=self.seed)
        rng = np.random.default_rng(self.seed)
        keras = import_keras()
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        # each class weighs the same in the loss (C-NMC's training sides hold about 3 ALL cells per normal one)
        best, best_loss, waited, rows = None, np.inf, 0, []
        for epoch in range(self.epochs):
            order = epoch_order(train, groups, rng, person_balanced=self.person_balanced)
            counts = np.bincount(y[order], minlength=2)
            weight = np.where(counts > 0, len(order) / (2 * np.maximum(counts, 1)), 0.0)
            seconds, losses = 0.0, []
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                x = self._inputs([augmenter(pixels[i], rng) for i in idx])
                t0 = time.perf_counter()
                losses.append(float(self.model_.train_on_batch(x, y[idx].astype(np.float32),
                                                               sample_weight=weight[y[idx]])))
                seconds += time.perf_counter() - t0
            val_loss, val_accuracy = np.nan, np.nan
            if len(val):
                val_logits = self._logits(x_val)
                val_loss = float(loss_fn(y[val].astype(np.float32)[:, None], val_logits[:, None],
                                         sample_weight=weight[y[val]]))
                val_accuracy = float(np.mean((val_logits >= 0) == y[val]))
            rows.append({"epoch": epoch + 1, "train loss": float(np.mean(losses)), "validation loss": val_loss,
                         "validation accuracy": val_accuracy, "train images/s": len(order) / seconds})
            if not len(val):
                best = self.model_.get_weights()
            elif val_loss < best_loss - 1e-4:
                best, best_loss, waited = self.model_.get_weights(), val_loss, 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        self.model_.set_weights(best)
        self.history_ = pd.DataFrame(rows).set_index("epoch")
        self.best_epoch_ = int(self.history_["validation loss"].idxmin()) if len(val) else len(rows)
        return self

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([forward(self.model_, x[s:s + 32])[:, 0] for s in range(0, len(x), 32)])

    def decision_function(self, ds: Dataset) -> np.ndarray:
        """The fine-tuned network's logit for each image of ``ds`` (positive: ALL)."""
        return self._logits(self._inputs(self._pixels(ds)))

    def embed(self, ds: Dataset) -> np.ndarray:
        """The fine-tuned network's pooled 1280 features of each image (for the probes)."""
        x = self._inputs(self._pixels(ds))
        return np.concatenate([forward(self.embedder_, x[s:s + 32]) for s in range(0, len(x), 32)])


def epoch_order(train: np.ndarray, groups: np.ndarray, rng: np.random.Generator, *,
                person_balanced: bool = False) -> np.ndarray:
    """The training images of one epoch, in the order they are seen: each once, shuffled; or with
    ``person_balanced``, as many draws of each person's (group's) images as the mean person has
    (with replacement where a person has fewer), so that a person with a thousand cells does not
    outweigh one with ten, then shuffled.

    >>> g = np.array(["a"] * 8 + ["b"] * 2)
    >>> order = epoch_order(np.arange(10), g, np.random.default_rng(0), person_balanced=True)
    >>> len(order), int((g[order] == "b").sum())
    (10, 5)
    """
    if not person_balanced:
        return rng.permutation(train)
    people = np.unique(groups[train])
    per = int(np.ceil(len(train) / len(people)))
    drawn = [rng.choice(train[groups[train] == p], per, replace=(groups[train] == p).sum() < per) for p in people]
    return rng.permutation(np.concatenate(drawn))


def _fit_in_child(inputs: str, outputs: str) -> None:
    """The child process of :func:`fit_apart`: a :class:`FineTuner` fitted on the pickled inputs;
    the test images' logits, the training history, the epoch kept and the weights pickled back."""
    with open(inputs, "rb") as f:
        params, pixels, y, groups, test_pixels = pickle.load(f)
    tuner = FineTuner(**params).fit_pixels(pixels, y, groups)
    with open(outputs, "wb") as f:
        pickle.dump((tuner._logits(tuner._inputs(test_pixels)), tuner.history_, tuner.best_epoch_,
                     tuner.model_.get_weights()), f)


def fit_apart(tuner: FineTuner, train: Dataset, test: Dataset, *, keep_network: bool = True) -> np.ndarray:
    """Fit ``tuner`` on ``train`` in a Python process of its own and return its logits for ``test``.

    TensorFlow keeps about 60 MB of every network it trains in a process, whatever is deleted
    (``keras.backend.clear_session`` and ``gc`` do not give it back: keras-team/tf-keras#286):
    a chapter that fine-tunes 50 networks grew by 3 GB. A child process gives all of it back
    when it ends; the numbers are those of ``tuner.fit(train)`` here, from the same seed. The
    child is a new interpreter that imports this library (not the caller's script), with the
    images, labels and groups handed over in a temporary folder. The tuner gets the child's
    ``history_`` and ``best_epoch_`` and, with ``keep_network``, the trained network (rebuilt here
    with the child's weights: building does not grow the process). A child that fails raises
    :class:`RuntimeError` with the end of its messages.
    """
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    tuner.check_params()
    library = str(Path(__file__).resolve().parents[2])  # the folder this alllib is imported from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [library, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="alllib-finetune-") as folder:
        inputs, outputs = Path(folder, "inputs.pkl"), Path(folder, "outputs.pkl")
        with open(inputs, "wb") as f:
            pickle.dump((tuner.get_params(), tuner._pixels(train), train.labels, train.groups, tuner._pixels(test)), f)
        done = subprocess.run([sys.executable, "-c", "import sys; from alllib.learn.finetune import _fit_in_child; "
                               "_fit_in_child(sys.argv[1], sys.argv[2])", str(inputs), str(outputs)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"fine-tuning in a child process failed (exit {done.returncode}): {tail}")
        with open(outputs, "rb") as f:
            logits, tuner.history_, tuner.best_epoch_, weights = pickle.load(f)
    if keep_network:
        tuner._build()
        tuner.model_.set_weights(weights)
    return logits


def finetuned(log: list | None = None, **settings):
    """A candidate for :func:`alllib.learn.candidates.evaluate_candidates`: a :class:`FineTuner` with
    ``settings`` fitted on each training side. It returns the test images' decision values as an
    :class:`~alllib.learn.evaluation.Evaluation` that carries the training ``history`` and, as
    ``best_params["epoch"]``, the epoch early stopping kept; its ``recipe`` (the settings, the
    starting weights named by their file's SHA-256) lets a checkpoint find the fit again. Each fold
    is fitted in a child process (:func:`fit_apart`), so that a chapter's memory does not grow with
    its folds. ``log`` holds the last tuner fitted (for the probes of its network), not every one:
    25 folds of networks with their optimisers' state would hold gigabytes; fits taken from a
    checkpoint are not logged."""

    def fit_score(train: Dataset, test: Dataset, seed: int) -> Evaluation:
        tuner = FineTuner(**{"seed": seed, **settings})
        logits = fit_apart(tuner, train, test, keep_network=log is not None)
        if log is not None:
            log[:] = [tuner]
        return score_evaluation("fine-tuned", test.labels, logits, test.ids,
                                history=tuner.history_, best_params={"epoch": tuner.best_epoch_})

    start = FineTuner(**settings).check_params()
    weights = weights_info(BACKBONES[start.backbone], start.weights, 0)[2]
    return with_recipe(fit_score, "finetuned", **{**settings, "weights": weights})


def last_fold_network(ds: Dataset, log: list, *, n_splits: int = 5, n_repeats: int = 1, seed: int = 0,
                      **settings) -> FineTuner:
    """The network a :func:`finetuned` candidate (with ``settings`` and ``log``) fitted on the last
    outer fold of :func:`~alllib.learn.candidates.evaluate_candidates` (the same ``n_splits``,
    ``n_repeats`` and ``seed``): the last of ``log``, or, where every fold was taken from a
    checkpoint and ``log`` is empty, fitted again on that fold's training side with its seed."""
    if log:
        return log[-1]
    fold = grouped_folds(ds.labels, ds.groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed)[-1]
    return FineTuner(**{"seed": fold.seed, **settings}).fit(ds.subset(fold.train))


def training_report(result: ProtocolResult) -> tuple[pd.DataFrame, float]:
    """The training histories of a :func:`finetuned` candidate's folds (``result``), one block per
    fold, and the median steady training speed: images/s over the epochs after the first (whose
    time includes building the training graph), or over all epochs where none ran past the first."""
    history = pd.concat({f"fold {e.fold}": e.history.rename_axis("epoch") for e in result.evaluations},
                        names=["fold"])
    later = history[history.index.get_level_values("epoch") > 1]["train images/s"]
    return history, float((later if len(later) else history["train images/s"]).median())
