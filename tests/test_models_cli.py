"""Saving and loading trained pipelines; the command line on good and bad inputs."""
import numpy as np
import pytest

from alllib.cli import main

from .conftest import write_rgb

pytest.importorskip("keras", reason="tensorflow/keras not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from alllib.models import save_model, train_image_classifier
    from alllib.synthetic import make_synthetic

    ds = make_synthetic(16, size=80, seed=4)
    pipe, meta = train_image_classifier(ds, backbone="efficientnet_lite0", weights="random", size=64,
                                        segmentation={"method": "kmeans", "k": 3}, search="none", progress=False,
                                        cache=False)
    path = save_model(tmp_path_factory.mktemp("m") / "model.alllib", pipe, meta)
    return ds, pipe, meta, path


def test_round_trip_gives_identical_predictions(trained):
    from alllib.models import load_model, predict_images

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

    from alllib.models import ModelFileError, load_model

    foreign = tmp_path / "foreign.pkl"
    joblib.dump({"not": "ours"}, foreign)
    with pytest.raises(ModelFileError, match="foreign.pkl: not an alllib model file"):
        load_model(foreign)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.alllib")


def test_cli_predict(trained, tmp_path, capsys):
    ds, _, _, path = trained
    a = write_rgb(tmp_path / "a.png", ds.image(0))
    b = write_rgb(tmp_path / "b.png", ds.image(1))
    assert main(["predict", str(path), str(a), str(b), "--csv"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "image,label,class,probability_blast" and len(out) == 3
    assert out[1].startswith(str(a)) and 0 <= float(out[1].split(",")[-1]) <= 1


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


def test_cli_datasets(tmp_path, capsys):
    assert main(["datasets", "--data", str(tmp_path), "--synthetic-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "all_idb2: not available" in out and "synthetic: 4 images" in out


def test_whole_image_to_label_pipeline_fits_and_tunes():
    """Segmenter -> FeatureExtractor -> scaler + SVM is one scikit-learn estimator."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from alllib.classifiers import make_classifier
    from alllib.features import FeatureExtractor
    from alllib.segmentation import Segmenter
    from alllib.synthetic import make_synthetic

    ds = make_synthetic(12, size=80, seed=6)
    pipe = Pipeline([("segment", Segmenter(k=3)),
                     ("features", FeatureExtractor("efficientnet_lite0", weights="random", size=64)),
                     ("classify", make_classifier("svm"))])
    search = GridSearchCV(pipe, {"classify__svm__C": [1, 10]}, cv=2).fit(ds.images(), ds.labels)
    assert search.best_estimator_.predict(ds.images()).shape == (12,)
