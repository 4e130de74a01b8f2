"""Model files: loading one never runs code from it, and a changed byte is always noticed."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from alllib.features import FeatureExtractor
from alllib.learn.classifiers import fit_classifier
from alllib.learn.modelfile import FORMAT_VERSION, MAGIC, ModelFileError, load_model, save_model


def _features():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 1280)), np.repeat([0, 1], 30)  # as many features as EfficientNet-Lite0 gives
    X[y == 1] += 1.0
    return X, y


@pytest.fixture(scope="module", params=["svm", "rf", "xgboost"])
def model_file(request, tmp_path_factory):
    """A real image pipeline (feature extractor, scaler, classifier) saved to a file; the
    classifier's probabilities on fixed features are what a changed file must not change."""
    X, y = _features()
    clf, _ = fit_classifier(request.param, X, y, search="none", probability=True)
    pipe = Pipeline([("features", FeatureExtractor("efficientnet_lite0", segmentation={"method": "kmeans", "k": 3}).fit()),
                     ("classifier", clf)])
    path = save_model(tmp_path_factory.mktemp("m") / f"{request.param}.alllib", pipe, {"classifier": request.param})
    return path, clf.predict_proba(X)


class _Marker:
    """Pickles to a call that creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_round_trip(model_file):
    path, proba = model_file
    pipe, meta = load_model(path)
    np.testing.assert_array_equal(pipe[-1].predict_proba(_features()[0]), proba)
    assert meta["classifier"] in path.name and path.read_bytes().startswith(MAGIC + f"{FORMAT_VERSION}\n".encode())


def test_an_old_pickle_model_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.alllib"
    evil.write_bytes(b"ALLLIB-MODEL 1\n" + json.dumps({"classifier": "svm"}).encode() + b"\n"
                     + pickle.dumps(_Marker(marker)))
    with pytest.raises(ModelFileError, match="evil.alllib: an old alllib model file .*retrain it"):
        load_model(evil)
    assert not marker.exists()


def _with_valid_checksum(path, payload: bytes, metadata=None):
    from alllib.learn.modelfile import _digest

    metadata = metadata or {"classifier": "svm"}
    header = {"sha256": _digest(metadata, payload), "metadata": metadata}
    path.write_bytes(MAGIC + f"{FORMAT_VERSION}\n".encode() + json.dumps(header).encode() + b"\n" + payload)
    return path


def test_a_crafted_file_with_a_valid_checksum_cannot_run_code(tmp_path):
    """An attacker can compute the checksum; only the list of trusted types stands between the
    file and code execution."""
    import skops.io as sio

    payloads = [sio.dumps({"run": os.system}), sio.dumps(Pipeline([("features", _Marker(tmp_path / "x"))]))]
    for i, payload in enumerate(payloads):
        evil = _with_valid_checksum(tmp_path / f"evil{i}.alllib", payload)
        with pytest.raises(ModelFileError, match=f"evil{i}.alllib: refused, it holds types that alllib does not load"):
            load_model(evil)
    assert not list(tmp_path.glob("x"))


def test_changed_bytes_are_refused(model_file, tmp_path):
    path, _ = model_file
    data = bytearray(path.read_bytes())
    for where in (len(data) // 2, len(data) - 10):
        changed = data.copy()
        changed[where:where + 5] = bytes((b + 1) % 256 for b in changed[where:where + 5])
        bad = tmp_path / "changed.alllib"
        bad.write_bytes(bytes(changed))
        with pytest.raises(ModelFileError, match="changed.alllib: a damaged alllib model file .*checksum"):
            load_model(bad)
    meta_changed = bytes(data).replace(b'"classifier": "', b'"classifier": "x', 1)
    (tmp_path / "meta.alllib").write_bytes(meta_changed)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "meta.alllib")


def test_a_newer_format_asks_for_an_upgrade(tmp_path):
    newer = tmp_path / "newer.alllib"
    newer.write_bytes(MAGIC + b"9\n" + json.dumps({"metadata": {"alllib_version": "7.1"}}).encode() + b"\n")
    with pytest.raises(ModelFileError, match=r"made by a newer alllib \(version 7.1, model format 9\).*upgrade"):
        load_model(newer)


def test_not_a_model_file(tmp_path):
    for name, content in (("random.bin", os.urandom(300)), ("empty.alllib", b""), ("text.alllib", b"hello\n")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=f"{name}: not an alllib model file"):
            load_model(tmp_path / name)
    with pytest.raises(ModelFileError, match="a directory, not a model file"):
        load_model(tmp_path)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.alllib")


def test_fuzzed_and_truncated_files_are_refused_never_crash(model_file, tmp_path):
    """Every truncation and random mutation is refused with a ModelFileError (or, where the change
    is one JSON does not see, loads with the very same predictions): never another exception."""
    path, proba = model_file
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    variants = [data[:n] for n in sorted({0, 5, 13, 14, 16, 40, len(data) // 3, len(data) - 1})]
    for _ in range(60):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), size=rng.integers(1, 6)):
            b[pos] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    header_end = data.index(b"\n", len(MAGIC) + 2)
    for _ in range(20):  # mutations in the header alone
        b = bytearray(data)
        b[int(rng.integers(0, header_end))] = int(rng.integers(32, 127))
        variants.append(bytes(b))
    bad = tmp_path / "fuzzed.alllib"
    loaded = 0
    for v in variants:
        bad.write_bytes(v)
        try:
            pipe, _ = load_model(bad)
        except ModelFileError as err:
            assert "fuzzed.alllib" in str(err)
            continue
        loaded += 1
        np.testing.assert_array_equal(pipe[-1].predict_proba(_features()[0]), proba)
    assert loaded < len(variants) // 10


def test_one_call_per_subject_from_its_cells():
    from alllib.learn.predict import Prediction, subject_calls

    rows = ([Prediction(f"UID_5_{i}_1_all.bmp", label=1, probability=0.9) for i in range(20)]
            + [Prediction(f"UID_h1_{i}_1_hem.bmp", label=0, probability=0.1) for i in range(20)]
            + [Prediction("UID_H2_1_1_hem.bmp", label=1, probability=0.6),
               Prediction("UID_H2_2_1_hem.bmp", label=0, probability=0.4),
               Prediction("other.png", label=1, probability=0.7), Prediction("UID_9_1_1_all.bmp", status="error")])
    t = subject_calls(rows)
    assert t["call"].to_dict() == {"5": "ALL", "H1": "normal", "H2": "uncertain"}
    assert t.loc["5", "cells"] == 20 and t.loc["H2", "share blast"] == 0.5 and t.attrs["unassigned"] == 2
    assert subject_calls(rows, {"other.png": "P"}).index.tolist() == ["P"]


def test_the_threshold_that_balances_both_classes():
    from alllib.learn.metrics import choose_threshold

    y = np.array([0] * 8 + [1] * 2)
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.45, 0.9])
    cut = choose_threshold(y, scores, 0.5)
    pred = scores >= cut
    assert pred[y == 1].all() and pred[y == 0].sum() == 3  # both blasts found, at the cost of three normal cells
    assert choose_threshold(np.array([1, 1]), np.array([0.2, 0.3]), 0.5) == 0.5  # one class: the default


def test_the_grouped_report_measures_the_neighbourhood_correction_it_will_apply():
    """With ``neighbours``, each held-out cell's decision is corrected by its most similar held-out
    cells before it is scored, as predict does with a batch: where each person's cells are noisy
    around the person's own place, the corrected report scores higher, and it records k."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from alllib.learn.training import grouped_report

    rng = np.random.default_rng(0)
    people = 12
    y = np.repeat(np.arange(people) % 2, 30)
    groups = np.repeat([f"s{i}" for i in range(people)], 30)
    where = rng.normal(0, 20, (people, 6))  # each person's own place, far apart
    where[:, 0] = 0
    X = where[np.repeat(np.arange(people), 30)] + rng.normal(0, 0.2, (len(y), 6))
    X[:, 0] = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.2, len(y))  # a weak, noisy class signal
    model = Pipeline([("scale", StandardScaler()), ("svm", SVC(C=1.0, gamma=0.01))])
    plain = grouped_report(model, X, y, groups, threshold="default", progress=False)
    mixed = grouped_report(model, X, y, groups, threshold="default", neighbours=10, progress=False)
    assert plain["neighbours"] == 0 and mixed["neighbours"] == 10
    gain = mixed["metrics"]["balanced_accuracy"]["mean"] - plain["metrics"]["balanced_accuracy"]["mean"]
    assert gain > 0.01


def test_the_report_judges_across_cohorts_and_calls_each_person():
    """With cohorts, each cohort is held out in turn: the report keeps each fold's figures with the
    cohorts it was trained and scored on, one call per person counted per class (a person with 3
    cells or fewer is uncertain), and describe_model prints them, saying which cohort each comes from."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from alllib.learn.predict import describe_model
    from alllib.learn.training import grouped_report

    rng = np.random.default_rng(1)
    cells = np.r_[np.full(8, 12), np.full(8, 2)]  # cohort 1: many cells each; cohort 2: two cells each
    people = np.arange(16)
    y_person, cohort_person = people % 2, np.where(people < 8, 1, 2)
    idx = np.repeat(people, cells)
    y, groups, cohorts = y_person[idx], np.array([f"p{i}" for i in idx]), cohort_person[idx]
    X = rng.normal(0, 1, (len(y), 4))
    X[:, 0] += 3 * y
    model = Pipeline([("scale", StandardScaler()), ("svm", SVC(C=1.0, gamma=0.1))])
    report = grouped_report(model, X, y, groups, threshold="default", cohorts=cohorts, progress=False)
    first, second = report["per_cohort"]
    assert (first["trained on"], first["scored on"]) == ("fold_2", "fold_1")
    assert (second["trained on"], second["scored on"]) == ("fold_1", "fold_2")
    assert second["people"]["normal"]["people"] == 4 and second["people"]["normal"]["with 3 cells or fewer"] == 4
    assert second["people"]["normal"]["uncertain"] == 4  # two cells cannot tell a share from one half
    assert first["people"]["ALL"]["called right"] == 4 and first["balanced_accuracy"] > 0.9
    meta = {"training_data": {"dataset": "cnmc", "originals": len(y), "groups": 16},
            "grouped_cv": {**grouped_report(model, X, y, groups, threshold="default", progress=False),
                           "cohorts": report}}
    said = describe_model(meta)
    assert "across cohorts, trained on fold_1, scored on fold_2: balanced accuracy" in said
    assert "one call per subject: ALL 4 of 4 right" in said and "with 3 cells or fewer" in said


def test_trains_cnmc_default_is_the_recorded_measurement_and_says_how_sure():
    """train's C-NMC default comes from benchmarks/cnmc_specificity.py --write-defaults: the file
    beside the module holds the choice, the candidates' calibrated verdicts behind it and the data
    they were measured on; the reason train gives says how sure the choice is."""
    from importlib import resources

    from alllib.learn.training import TRAIN_DEFAULTS, train_defaults

    recorded = json.loads(resources.files("alllib.learn").joinpath("train_defaults.json").read_text())["cnmc"]
    chosen = train_defaults("cnmc")
    assert chosen["neighbours"] == recorded["neighbours"] and chosen["segmentation"] == "none"
    assert chosen["why"] == recorded["why"] and "Holm-adjusted p" in chosen["why"]
    verdicts = {name: row.get("verdict") for name, row in recorded["measured"]["candidates"].items()}
    if recorded["chosen"] != "frozen":  # a setting is adopted only where the calibrated verdict says better
        assert verdicts[recorded["chosen"]] == "better"
    else:
        assert "better" not in verdicts.values() and chosen["neighbours"] == 0
    assert TRAIN_DEFAULTS["*"]["neighbours"] == 0
