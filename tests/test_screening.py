"""Screening whole slides: finding the cells, cutting them, the slide rule, the slide-disjoint study,
the ALL-IDB1 loader and the ``screen`` command, on synthetic slides with known cells and on the
real ALL-IDB1 slides where present."""
from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pandas as pd
import pytest

from alllib.data import DatasetError, make_synthetic
from alllib.data.all_idb1 import load_all_idb1, marked_blasts
from alllib.data.synthetic import make_synthetic_slides, synthetic_slide
from alllib.detection import CROP_SIZE, cut_crops, find_cells, match_cells
from alllib.learn.screening import MATCH_RADIUS, ScreenError, SlideRule, acquisition_baseline, screening_study

from .test_hostile_inputs import huge_png

#: Cell models for the study and the command: random Lite0 weights at 64 pixels, no grid, no cache.
FAST_MODEL = {"backbone": "efficientnet_lite0", "weights": "random", "size": 64, "search": "none", "cache": False}


def _recall(seeds, layout, touching):
    found = total = extra = 0
    for seed in seeds:
        slide, truth = synthetic_slide(layout, width=1200, height=900, touching=touching, seed=seed)
        cells = find_cells(slide).cells
        hit = match_cells(cells[["x", "y"]], truth[["x", "y"]], 40)
        found, total = found + (hit >= 0).sum(), total + len(hit)
        extra += len(cells) - len(set(hit[hit >= 0]))
    return found / total, extra


def test_every_white_cell_of_a_synthetic_slide_is_found_touching_pairs_split():
    recall, extra = _recall(range(8), [1, 1, 0, 0, 1, 0, 1, 0], touching=2)
    assert recall >= 0.95 and extra <= 2
    # pairs of blasts, nucleus touching nucleus: both cells of a pair found, not one between them
    for seed in range(6):
        slide, truth = synthetic_slide([1, 1, 1, 1], width=900, height=700, touching=2, seed=seed)
        hit = match_cells(find_cells(slide).cells[["x", "y"]], truth[["x", "y"]], 40)
        assert (hit >= 0).all() and len(set(hit)) == 4, f"seed {seed}: {hit}"


def test_the_nucleus_cut_follows_each_slides_stain():
    slide, truth = synthetic_slide([1, 0, 1], width=800, height=600, touching=0, seed=5)
    pale = np.clip(255 - (255 - slide.astype(np.float32)) * 0.55, 0, 255).astype(np.uint8)  # a weaker stain
    a_strong, a_pale = find_cells(slide), find_cells(pale)
    assert a_pale.threshold < a_strong.threshold
    assert (match_cells(a_pale.cells[["x", "y"]], truth[["x", "y"]], 40) >= 0).all()


def test_a_slide_without_stained_nuclei_gives_no_cell_and_says_why():
    flat = np.full((600, 800, 3), (205, 190, 195), np.uint8)
    flat += np.random.default_rng(0).integers(0, 3, flat.shape, dtype=np.uint8)
    found = find_cells(flat)
    assert len(found.cells) == 0 and "no stained nucleus" in found.note
    gray = cv2.cvtColor(cv2.cvtColor(synthetic_slide([1, 0], width=600, height=500)[0], cv2.COLOR_RGB2GRAY),
                        cv2.COLOR_GRAY2RGB)
    assert len(find_cells(gray).cells) == 0
    with pytest.raises(ValueError, match="diameter"):
        find_cells(flat, diameter=-1)


def test_crops_are_cut_as_all_idb2_was_cut():
    slide = np.arange(400 * 500 * 3, dtype=np.uint32).reshape(400, 500, 3).astype(np.uint8)
    inner, edge = cut_crops(slide, [(250, 200), (5, 395)])
    assert inner.shape == (CROP_SIZE, CROP_SIZE, 3) and np.array_equal(inner, slide[72:329, 122:379])
    assert edge.shape == (133, 134, 3)  # cut short at the slide's edge, never padded


def test_the_slide_rule_rarely_calls_a_healthy_smear_all():
    rule = SlideRule(false_positives=12, negatives=130)
    rng = np.random.default_rng(0)
    true_rate = 12 / 130
    for n in (10, 30, 60):
        calls = [rule.call(n, int(k))[0] for k in rng.binomial(n, true_rate, 4000)]
        assert calls.count("ALL") / len(calls) <= 0.01  # the rule's alpha, at the measured rate
    # the point estimate instead of its upper bound would not hold at a rate a little above it
    worse = [rule.call(30, int(k))[0] for k in rng.binomial(30, 0.14, 4000)]
    assert worse.count("ALL") / len(worse) <= 0.02
    assert rule.call(20, 12)[0] == "ALL" and rule.call(20, 1)[0] == "normal" and rule.call(2, 2)[0] == "uncertain"
    with pytest.raises(ValueError):
        SlideRule(5, 3)
    with pytest.raises(ScreenError, match="no cross-validated error counts"):
        SlideRule.from_metadata({"grouped_cv": {"folds": 3}})


def test_the_size_alone_baseline():
    table = pd.DataFrame({"id": [f"s{i}" for i in range(20)], "label": [1] * 10 + [0] * 10})
    table["group"] = table["id"]
    table["acquisition"] = np.where(table["label"] == 1, "1712x1368", "2592x1944")
    assert acquisition_baseline(table)["balanced_accuracy"] == 1.0
    table["acquisition"] = "2592x1944"
    assert acquisition_baseline(table)["balanced_accuracy"] == 0.5


def test_the_all_idb1_loader(tmp_path):
    im, xyc = tmp_path / "ALL_IDB1" / "im", tmp_path / "ALL_IDB1" / "xyc"
    im.mkdir(parents=True), xyc.mkdir()
    slide, truth = synthetic_slide([1, 0], width=600, height=500, touching=0)
    for name in ("Im001_1", "Im002_0"):
        cv2.imwrite(str(im / f"{name}.jpg"), slide[:, :, ::-1])
    (im / "Im003_0.jpg").write_bytes((im / "Im002_0.jpg").read_bytes())  # a byte-identical twin
    (xyc / "Im001_1.xyc").write_text("".join(f"{x:.0f}\t{y:.0f}\n" for x, y in truth[["x", "y"]].to_numpy()[:1]))
    (xyc / "Im002_0.xyc").write_text("\n")
    ds = load_all_idb1(tmp_path)
    t = ds.table.set_index("id")
    assert t["label"].to_dict() == {"Im001_1": 1, "Im002_0": 0, "Im003_0": 0}
    assert t.at["Im003_0", "group"] == t.at["Im002_0", "group"] and t.at["Im001_1", "marked"] == 1
    assert t.at["Im001_1", "acquisition"] == "600x500" and ds.image(0).shape == (500, 600, 3)
    (xyc / "Im001_1.xyc").write_text("12 40\nnot a point\n")
    with pytest.raises(DatasetError, match=r"Im001_1.xyc: line 2 is not 'x y'"):
        marked_blasts(xyc / "Im001_1.xyc")
    with pytest.raises(DatasetError, match="ALL-IDB1 not found"):
        load_all_idb1(tmp_path / "empty")


@pytest.fixture(scope="module")
def study_and_trainings():
    """The study on four synthetic slides, with crops that claim to come from those slides (as
    ALL-IDB2's come from ALL-IDB1's), and the slides each fold's model was trained on."""
    import alllib.learn.training as training

    slides = make_synthetic_slides(4, seed=1)
    crops = make_synthetic(48, size=96, seed=2)
    crops.table["slide"] = [slides.table["id"][i % 4] for i in range(len(crops))]
    seen, real = [], training.train_image_classifier

    def spy(ds, **kw):
        seen.append(set(ds.table["slide"]))
        return real(ds, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "train_image_classifier", spy)
        study = screening_study(slides, crops, n_splits=2, progress=False, **FAST_MODEL)
    return study, seen


def test_the_study_never_screens_a_slide_with_a_model_trained_on_its_crops(study_and_trainings):
    study, seen = study_and_trainings
    assert len(seen) == 2
    for fold, trained_on in enumerate(seen):
        screened = set(study.slides.loc[study.slides["fold"] == fold, "slide"])
        assert screened and not screened & trained_on and trained_on  # disjoint, and both sides used


def test_the_study_scores_detection_and_calls(study_and_trainings):
    study, _ = study_and_trainings
    d, c = study.detection(), study.calls()
    assert d["marked"] == 10 and d["found"] >= 0.9 and d["radius_px"] == MATCH_RADIUS
    assert c["slides"] == 4 and c["right"] + c["uncertain"] + c["wrong"] == 4
    assert set(study.cells.columns) >= {"slide", "x", "y", "label", "probability_blast", "near_marked"}
    view = study.view(make_synthetic_slides(4, seed=1), study.slides.at[0, "slide"])
    assert view["image"].shape == (768, 1024, 3) and len(view["cells"]) == len(view["found"].cells)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from alllib.learn.modelfile import save_model
    from alllib.learn.training import train_image_classifier

    pipe, meta = train_image_classifier(make_synthetic(48, size=96, seed=2), segmentation={"method": "kmeans", "k": 3},
                                        progress=False, **FAST_MODEL)
    return save_model(tmp_path_factory.mktemp("screen") / "m.alllib", pipe, meta)


def test_a_slide_of_another_acquisition_or_with_no_cell_is_flagged_not_lost(tmp_path, model_file):
    from alllib.learn.modelfile import load_model
    from alllib.learn.screening import screen_files

    pipe, meta = load_model(model_file)
    meta["training_data"]["acquisitions"] = ["2592x1944"]
    slide, flat = tmp_path / "slide.png", tmp_path / "flat.png"
    cv2.imwrite(str(slide), synthetic_slide([1, 0], width=700, height=600, touching=0)[0][:, :, ::-1])
    cv2.imwrite(str(flat), np.full((600, 700, 3), (195, 190, 205), np.uint8))
    other, empty = screen_files(pipe, [slide, flat], metadata=meta)
    assert other.status == "warning" and "a 700x600 slide" in other.message and other.summary["cells"] >= 2
    assert empty.status == "warning" and "no stained nucleus" in empty.message
    assert empty.summary["cells"] == 0 and empty.summary["call"] == "uncertain"


@pytest.mark.slow
def test_the_screen_command(tmp_path, model_file, capsys):
    from alllib.cli import main

    paths = []
    for i, layout in enumerate(([1, 1, 0], [0, 0])):
        slide, _ = synthetic_slide(layout, width=700, height=600, touching=0, seed=i)
        paths.append(tmp_path / f"slide{i}.png")
        cv2.imwrite(str(paths[-1]), slide[:, :, ::-1])
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), cv2.imread(str(paths[0]))[:200, :200])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    huge = tmp_path / "huge.png"
    huge.write_bytes(huge_png(30000, 30000))  # declares 900 megapixels: refused before decoding
    args = ["screen", str(model_file), *map(str, paths), str(crop), str(broken), str(huge), "--csv",
            "--cells-csv", str(tmp_path / "cells.csv"), "--overlays", str(tmp_path / "ov")]
    assert main(args) == 1  # some inputs refused, none lost
    out = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "error", "error"]
    assert "huge.png: declares" in rows[4]["message"]
    assert list(rows[0]) == ["slide", "status", "cells", "blasts", "blast_share", "call", "message"]
    assert "a crop of one cell rather than a slide" in rows[2]["message"] and "broken.jpg" in rows[3]["message"]
    assert all(r["call"] in ("ALL", "normal", "uncertain") for r in rows[:2]) and int(rows[0]["cells"]) >= 2
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert list(cells.columns) == ["slide", "x", "y", "label", "probability_blast"]
    assert len(cells) == int(rows[0]["cells"]) + int(rows[1]["cells"])
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["slide0.png", "slide1.png"]
    assert "# rule:" in out.err
    assert main(["screen", str(model_file), *map(str, paths)]) == 0


@pytest.mark.slow
def test_screen_refuses_a_model_of_segmented_single_cells(tmp_path, model_file, capsys):
    from alllib.cli import main
    from alllib.learn.modelfile import load_model, save_model

    pipe, meta = load_model(model_file)
    meta["training_data"]["dataset"] = "cnmc"
    other = save_model(tmp_path / "cnmc.alllib", pipe, meta)
    slide = tmp_path / "s.png"
    cv2.imwrite(str(slide), synthetic_slide([1], width=600, height=600)[0])
    assert main(["screen", str(other), str(slide)]) == 2
    assert "segmented single cells" in capsys.readouterr().err


def test_the_marked_blasts_of_the_real_slides_are_found(real_slides):
    marked = found = 0
    for i in range(len(real_slides)):
        row = real_slides.table.iloc[i]
        cells = find_cells(real_slides.image(i)).cells
        assert len(cells) >= 3, f"{row['id']}: only {len(cells)} cells found"
        points = marked_blasts(row["xyc"]) if row["xyc"] else np.zeros((0, 2))
        hit = match_cells(cells[["x", "y"]], points, MATCH_RADIUS)
        marked, found = marked + len(points), found + (hit >= 0).sum()
    assert marked == 0 or found / marked >= 0.98


def test_the_cells_all_idb2_was_cut_around_are_found(real_slides, real_idb2):
    from alllib.learn.screening import crop_centres

    crops = real_idb2.table
    names = crops["slide"].astype(str).str.replace(r"\.\w+$", "", regex=True)
    total = found = 0
    for group, part in real_slides.table.groupby("group"):
        i = int(part.index[0])
        own = crops[names.isin(set(part["id"])).to_numpy()]
        if len(own):
            cells = find_cells(real_slides.image(i)).cells
            hit = match_cells(cells[["x", "y"]], crop_centres(own), MATCH_RADIUS)
            total, found = total + len(own), found + (hit >= 0).sum()
    assert total == 0 or found / total >= 0.95
