"""Saving and loading trained pipelines; the command line on good and bad inputs."""
import numpy as np
import pytest

from alllib.cli import main

from .conftest import write_rgb

pytest.importorskip("keras", reason="tensorflow/keras not installed")
pytestmark = pytest.mark.slow
#: ``train`` on 24 synthetic smears with random Lite0 weights and no grid: seconds, offline (on 16 the
#: probability calibration comes out inverted, and train rightly refuses to save).
TRAIN_SYNTHETIC = ["train", "--dataset", "synthetic", "--synthetic-n", "24", "--backbone", "efficientnet_lite0",
                   "--weights", "random", "--search", "none"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from alllib.data.synthetic import make_synthetic
    from alllib.learn.modelfile import save_model
    from alllib.learn.training import train_image_classifier

    ds = make_synthetic(16, size=80, seed=4)
    pipe, meta = train_image_classifier(ds, backbone="efficientnet_lite0", weights="random", size=64,
                                        segmentation={"method": "kmeans", "k": 3}, search="none", progress=False,
                                        cache=False)
    path = save_model(tmp_path_factory.mktemp("m") / "model.alllib", pipe, meta)
    return ds, pipe, meta, path


def test_round_trip_gives_identical_predictions(trained):
    from alllib.learn.modelfile import load_model
    from alllib.learn.predict import predict_images

    ds, pipe, meta, path = trained
    images = ds.images()
    before = predict_images(pipe, images)
    loaded, meta2 = load_model(path)
    after = predict_images(loaded, images)
    assert np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1])
    assert meta2["backbone"] == "efficientnet_lite0" and "NOT ImageNet" in meta2["weights"]
    assert meta2["segmentation"] == {"method": "kmeans", "k": 3}
    assert meta2["training_data"]["originals"] == 16 and meta2["alllib_version"]


def test_refuses_foreign_files(tmp_path):
    import joblib

    from alllib.learn.modelfile import ModelFileError, load_model

    foreign = tmp_path / "foreign.pkl"
    joblib.dump({"not": "ours"}, foreign)
    with pytest.raises(ModelFileError, match="foreign.pkl: not an alllib model file"):
        load_model(foreign)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.alllib")


def _csv(text):
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def test_cli_predict(trained, tmp_path, capsys):
    ds, _, _, path = trained
    a = write_rgb(tmp_path / "a.png", ds.image(0))
    b = write_rgb(tmp_path / "b.png", ds.image(1))
    assert main(["predict", str(path), str(a), str(b), "--csv"]) == 0
    rows = _csv(capsys.readouterr().out)
    assert list(rows[0]) == ["image", "status", "label", "class", "probability_blast", "message"] and len(rows) == 2
    assert rows[0]["image"] == str(a) and rows[0]["status"] == "ok" and 0 <= float(rows[0]["probability_blast"]) <= 1


def test_cli_predict_never_loses_the_batch(trained, tmp_path, capsys):
    """A 1x1 image, an unreadable file and a directory each get their own error row; the good
    images around them are still labelled, in order."""
    ds, _, _, path = trained
    good0 = write_rgb(tmp_path / "good0.png", ds.image(0))
    one = write_rgb(tmp_path / "one.png", ds.image(1)[:1, :1])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    folder = tmp_path / "folder"
    folder.mkdir()
    good1 = write_rgb(tmp_path / "good1.png", ds.image(1))
    inputs = [good0, one, bad, folder, good1]
    assert main(["predict", str(path), *map(str, inputs), "--csv"]) == 1
    captured = capsys.readouterr()
    rows = _csv(captured.out)
    assert [r["image"] for r in rows] == list(map(str, inputs))
    assert [r["status"] for r in rows] == ["ok", "error", "error", "error", "ok"]
    assert "1x1 pixels, too small" in rows[1]["message"] and "not a readable image" in rows[2]["message"]
    assert "a directory, not an image file" in rows[3]["message"]
    assert rows[0]["label"] in ("0", "1") and rows[1]["label"] == ""
    for p in (one, bad, folder):
        assert f"error: {p}" in captured.err


def test_cli_predict_flags_images_without_a_visible_cell(trained, tmp_path, capsys):
    ds, _, _, path = trained
    black = write_rgb(tmp_path / "black.png", np.zeros((80, 80, 3), np.uint8))
    white = write_rgb(tmp_path / "white.png", np.full((80, 80, 3), 255, np.uint8))
    grey = ds.image(0).mean(axis=2, keepdims=True).astype(np.uint8).repeat(3, axis=2)
    gray = write_rgb(tmp_path / "gray.png", grey)
    good = write_rgb(tmp_path / "good.png", ds.image(0))
    assert main(["predict", str(path), str(black), str(white), str(gray), str(good), "--csv"]) == 1
    captured = capsys.readouterr()
    rows = {r["image"]: r for r in _csv(captured.out)}
    for p, why in ((black, "uniform image"), (white, "uniform image"), (gray, "grayscale image")):
        assert rows[str(p)]["status"] == "warning" and why in rows[str(p)]["message"]
        assert f"warning: {p}" in captured.err  # every warning names its file
    assert rows[str(good)]["status"] == "ok"


def test_cli_predict_bad_inputs(trained, tmp_path, capsys):
    ds, _, _, path = trained
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    good = write_rgb(tmp_path / "g.png", ds.image(0))
    assert main(["predict", str(path), str(bad), str(good)]) == 1  # the good one is still labelled
    captured = capsys.readouterr()
    assert "bad.png: not a readable image" in captured.err and str(good) in captured.out
    assert main(["predict", str(bad), str(good)]) == 2
    assert "not an alllib model file" in capsys.readouterr().err


def test_cli_predict_without_the_weights_offline(trained, tmp_path, capsys, monkeypatch):
    from alllib import features

    ds, _, _, path = trained
    good = write_rgb(tmp_path / "g.png", ds.image(0))

    def unavailable(self):
        raise features.WeightsUnavailableError("EfficientNet-Lite0: weights file not found here")

    monkeypatch.setattr(features.FeatureExtractor, "_network", unavailable)
    assert main(["predict", str(path), str(good)]) == 2
    assert "error: EfficientNet-Lite0: weights file not found here" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--out", "{tmp}"], "a directory; give a file name"),
    (["--out", "{tmp}/afile/model.alllib"], "cannot write there"),
    (["--dataset", "all_idb2", "--data", "{tmp}/nothing"], "ALL-IDB2 not found"),
    (["--weights", "{tmp}/missing.h5"], "no such weights file"),
])
def test_cli_train_checks_before_training(tmp_path, capsys, monkeypatch, argv, message):
    from alllib.learn import training as models

    monkeypatch.setattr(models, "train_image_classifier", lambda *a, **k: pytest.fail("trained despite a bad option"))
    (tmp_path / "afile").write_text("a file, not a folder")
    assert main(["train", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    assert message in capsys.readouterr().err


def test_cli_train_takes_the_datasets_defaults_where_not_told(tmp_path, capsys, monkeypatch):
    """Unset options take the dataset's defaults (TRAIN_DEFAULTS), --k still reaches K-means, and a
    given option wins over the default."""
    from alllib.learn import training as models

    seen = []

    def capture(ds, **settings):
        seen.append(settings)
        raise models.TrainingError("stopped by the test")

    monkeypatch.setattr(models, "train_image_classifier", capture)
    base = ["train", "--dataset", "synthetic", "--synthetic-n", "8", "--backbone", "efficientnet_lite0",
            "--weights", "random", "--out", str(tmp_path / "m.alllib")]
    assert main([*base, "--k", "4"]) == 2
    assert seen[-1]["segmentation"] == {"method": "kmeans", "k": 4} and seen[-1]["neighbours"] == 0
    monkeypatch.setitem(models.TRAIN_DEFAULTS, "synthetic", {"segmentation": "none", "neighbours": 10, "why": "test"})
    assert main(base) == 2
    assert seen[-1]["segmentation"] is None and seen[-1]["neighbours"] == 10
    assert main([*base, "--segmentation", "otsu", "--neighbours", "0"]) == 2
    assert seen[-1]["segmentation"] == {"method": "otsu", "k": 3} and seen[-1]["neighbours"] == 0
    assert "stopped by the test" in capsys.readouterr().err


def test_cli_train_without_weights_offline(tmp_path, capsys, monkeypatch):
    """The library's one message for missing weights: the file to place and where."""
    import alllib.features.backbones as B

    monkeypatch.setattr(B, "keras_home", lambda: tmp_path / "keras")
    monkeypatch.setitem(B._FAILED_DOWNLOADS, "densenet201", "offline")
    assert main(["train", "--backbone", "densenet201", "--out", str(tmp_path / "m.alllib")]) == 2
    err = capsys.readouterr().err
    assert "ImageNet weights for DenseNet-201 are not available offline" in err
    assert f"densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5 in {tmp_path / 'keras' / 'models'}/" in err


@pytest.mark.parametrize("argv,message", [
    (["--k", "1"], "argument --k: must be an integer >= 2, not 1"),
    (["--augment-to", "-5"], "argument --augment-to: must be a positive integer, not -5"),
    (["--seed", "-1"], "argument --seed: must be a seed, an integer from 0 to 2**32 - 1, not -1"),
    (["--backbone", "alexnet"], "argument --backbone: invalid choice")])
def test_cli_train_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_cli_train_reports_accuracy_and_a_failed_save_keeps_the_old_model(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.alllib"
    argv = [*TRAIN_SYNTHETIC, "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "trained on 24 synthetic images in 24 groups" in text and "grouped cross-validation" in text
    assert "balanced accuracy" in text and "specificity" in text and "weighted f1" in text
    before = out.read_bytes()
    import skops.io

    def full_disk(obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(skops.io, "dumps", full_disk)
    assert main(argv) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_tensorflow_start_up_lines_stay_off_the_terminal(trained, tmp_path):
    import subprocess
    import sys

    ds, _, _, path = trained
    good = write_rgb(tmp_path / "g.png", ds.image(0))
    run = subprocess.run([sys.executable, "-m", "alllib", "predict", str(path), str(good)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "absl::InitializeLog" not in run.stderr and "cuda" not in run.stderr.lower(), run.stderr


def test_cli_datasets(tmp_path, capsys):
    assert main(["datasets", "--data", str(tmp_path), "--synthetic-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "all_idb2: not available" in out and "synthetic: 4 images" in out


def test_cli_datasets_lists_an_unreadable_image_and_describes_the_rest(idb2_tree, capsys):
    (idb2_tree / "ALL_IDB2" / "img" / "Im007_1.tif").write_bytes(b"not a tiff")
    assert main(["datasets", "--data", str(idb2_tree), "--synthetic-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "all_idb2: 6 images" in out and "1 unreadable file(s)" in out and "Im007_1.tif: not a readable image" in out


def test_synthetic_size_applies_when_auto_falls_back(tmp_path):
    from alllib.data import load_dataset

    assert len(load_dataset("auto", tmp_path, n_synthetic=6, verbose=False)) == 6


def test_whole_image_to_label_pipeline_fits_and_tunes():
    """Segmenter -> FeatureExtractor -> scaler + SVM is one scikit-learn estimator."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from alllib.data.synthetic import make_synthetic
    from alllib.features import FeatureExtractor
    from alllib.learn.classifiers import make_classifier
    from alllib.segmentation import Segmenter

    ds = make_synthetic(12, size=80, seed=6)
    pipe = Pipeline([("segment", Segmenter(k=3)),
                     ("features", FeatureExtractor("efficientnet_lite0", weights="random", size=64)),
                     ("classify", make_classifier("svm"))])
    search = GridSearchCV(pipe, {"classify__svm__C": [1, 10]}, cv=2).fit(ds.images(), ds.labels)
    assert search.best_estimator_.predict(ds.images()).shape == (12,)


def test_an_image_unlike_the_training_images_is_labelled_but_flagged(trained, tmp_path, capsys):
    """A C-NMC-like cell (450 px, on black) given to a model trained on 80-px smears: labelled,
    with a warning that says how it differs; the training images themselves pass."""
    import cv2

    ds, _, meta, path = trained
    stats = meta["training_statistics"]
    assert stats["height"] == [80, 80] and len(stats["stain_low"]) == 3 and stats["distance_q99"] > 0
    odd = np.zeros((450, 450, 3), np.uint8)
    cv2.circle(odd, (225, 225), 110, (70, 40, 150), -1)
    odd_path = write_rgb(tmp_path / "cnmc_like.png", odd)
    good = [write_rgb(tmp_path / f"good{i}.png", ds.image(i)) for i in range(4)]
    assert main(["predict", str(path), *map(str, good), str(odd_path), "--csv"]) == 1
    rows = {r["image"]: r for r in _csv(capsys.readouterr().out)}
    flagged = rows[str(odd_path)]
    assert flagged["status"] == "warning" and flagged["label"] != ""
    assert "450x450 pixels, unlike the training images (80-80 x 80-80)" in flagged["message"]
    assert all(rows[str(p)]["status"] == "ok" for p in good)


def test_cli_train_refuses_to_save_an_inverted_calibration(tmp_path, capsys, monkeypatch):
    from alllib.learn import training as models

    monkeypatch.setattr(models, "calibration_problem", lambda clf: "the probability calibration came out inverted")
    out = tmp_path / "m.alllib"
    assert main([*TRAIN_SYNTHETIC, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "calibration came out inverted. 24 images in 24 groups are too few" in err and "nothing was saved" in err
    assert not out.exists()


def test_train_reports_what_a_new_patient_gets_and_predict_applies_the_saved_threshold(trained, tmp_path, capsys):
    """The model file carries the grouped cross-validated figures and a threshold chosen on
    cross-validated decisions; ``predict --about`` prints them, and labels follow the threshold."""
    from alllib.learn.modelfile import load_model
    from alllib.learn.predict import predict_images
    from alllib.learn.training import REPORTED

    ds, pipe, meta, path = trained
    cv, cut = meta["grouped_cv"], meta["threshold"]
    assert cv["folds"] >= 2 and set(cv["metrics"]) == set(REPORTED) and cv["threshold_rule"] == "balanced"
    assert cv["scored"] == 16 and cv["per_group"] and 0 <= cut["probability"] <= 1
    assert main(["predict", str(path), "--about"]) == 0
    about = capsys.readouterr().out
    assert "grouped cross-validation" in about and f"p(blast) >= {cut['probability']:.3f}" in about
    loaded, meta = load_model(path)
    labels, proba = predict_images(loaded, ds.images(), threshold=meta["threshold"]["probability"])
    assert np.array_equal(labels, (proba >= meta["threshold"]["probability"]).astype(int))
    assert main(["predict", str(path)]) == 2


def test_predict_by_subject_gives_one_call_per_person(trained, tmp_path, capsys):
    ds, _, _, path = trained
    files = [write_rgb(tmp_path / f"UID_{s}_{i}_1_{'all' if s == '7' else 'hem'}.png", ds.image(i))
             for s in ("7", "h2") for i in range(3)] + [write_rgb(tmp_path / "loose.png", ds.image(0))]
    assert main(["predict", str(path), *map(str, files), "--by-subject", "--csv"]) == 0
    out = capsys.readouterr()
    calls = {r["subject"]: r for r in _csv(out.out)}
    assert set(calls) == {"7", "H2"} and calls["7"]["cells"] == "3"
    assert all(r["call"] in ("ALL", "normal", "uncertain") for r in calls.values())
    assert float(calls["H2"]["share 95% low"]) <= float(calls["H2"]["share blast"]) <= float(calls["H2"]["share 95% high"])
    assert "1 image(s) not labelled or without a known subject" in out.err


def test_predict_with_the_neighbourhood_correction_mixes_each_cell_with_its_own_persons(trained, tmp_path):
    """--neighbours K: each probability becomes half its own, half its nearest cells' of the same
    person. A cell and its copy are each other's nearest: unchanged; a third cell of the same person,
    unlike both, moves halfway to them; the same cell given to another person, or to nobody known,
    is left as it is (a batch of several people is never mixed)."""
    from alllib.learn.modelfile import load_model
    from alllib.learn.predict import predict_files

    ds, _, _, path = trained
    pipe, meta = load_model(path)
    blast, normal = int(np.flatnonzero(ds.labels == 1)[0]), int(np.flatnonzero(ds.labels == 0)[0])
    files = [write_rgb(tmp_path / "a.png", ds.image(blast)), write_rgb(tmp_path / "a2.png", ds.image(blast)),
             write_rgb(tmp_path / "b.png", ds.image(normal))]
    one = {str(f): "P1" for f in files}
    plain = [r.probability for r in predict_files(pipe, files, metadata=meta)]
    mixed = [r.probability for r in predict_files(pipe, files, metadata=meta, neighbours=1, subjects=one)]
    assert abs(plain[0] - plain[2]) > 1e-6
    assert mixed[0] == pytest.approx(plain[0], abs=1e-6) and mixed[1] == pytest.approx(plain[1], abs=1e-6)
    assert mixed[2] == pytest.approx((plain[2] + plain[0]) / 2, abs=1e-6)
    rows = predict_files(pipe, files, metadata={**meta, "neighbours": 1}, subjects=one)
    assert [r.probability for r in rows] == mixed and all(r.corrected and r.subject == "P1" for r in rows)
    two = {**one, str(files[2]): "P2"}  # b alone in its person: left as it is
    apart = predict_files(pipe, files, metadata=meta, neighbours=1, subjects=two)
    assert apart[2].probability == pytest.approx(plain[2], abs=1e-9) and not apart[2].corrected
    nobody = predict_files(pipe, files, metadata=meta, neighbours=1)  # no C-NMC names, no subjects: no correction
    assert [r.probability for r in nobody] == plain and not any(r.corrected for r in nobody)
    with pytest.raises(SystemExit) as exit_:  # the model's own setting is the default; 0 turns it off
        main(["predict", str(path), *map(str, files), "--neighbours", "-1"])
    assert exit_.value.code == 2
