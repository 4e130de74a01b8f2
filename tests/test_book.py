"""The book's runner and chapter parameters: papermill overrides reach the outputs, bad ones fail clearly."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from alllib.book.parameters import ParameterError, check_parameters
from alllib.book.runner import BookError, _parse_overrides, notebooks_in_toc, run_book

ROOT = Path(__file__).resolve().parents[1]


def test_check_parameters():
    assert check_parameters(seed=1, backbone="vgg19", data_dir=None) == {"seed": 1, "backbone": "vgg19", "data_dir": None}
    with pytest.raises(ParameterError, match=r"parameter 'seed' must be a seed, an integer from 0 to 2\*\*32 - 1, not '1'"):
        check_parameters(seed="1")
    with pytest.raises(ParameterError, match="'n_repeats' must be a positive integer, not True"):
        check_parameters(n_repeats=True)
    with pytest.raises(ParameterError, match="'backbone' must be one of .*not 'alexnet'"):
        check_parameters(backbone="alexnet")
    with pytest.raises(ParameterError, match="'n_splits' must be a positive integer, not 0"):
        check_parameters(n_splits=0)
    with pytest.raises(ParameterError, match=r"parameter 'seed' must be a seed, an integer from 0 to 2\*\*32 - 1, not -1"):
        check_parameters(seed=-1)
    with pytest.raises(ParameterError, match="parameter 'kmeans_k' must be an integer >= 2, not 1"):
        check_parameters(kmeans_k=1)
    with pytest.raises(ParameterError, match="unknown parameter 'colour'"):
        check_parameters(colour="red")


def test_overrides_are_typed_and_checked():
    names = ["01_datasets", "09_leakage"]
    out = _parse_overrides([("seed", "3"), ("09_leakage.n_repeats", "5"), ("data_dir", "null")], names)
    assert out["*"] == {"seed": 3, "data_dir": None} and out["09_leakage"] == {"n_repeats": 5}
    with pytest.raises(ParameterError, match="'seed' must be a seed, .*not 'three'"):
        _parse_overrides([("seed", "three")], names)
    with pytest.raises(ParameterError, match="no notebook '99_extra'"):
        _parse_overrides([("99_extra.seed", "1")], names)
    with pytest.raises(ParameterError, match="unknown parameter 'speed'"):
        _parse_overrides([("speed", "1")], names)


def test_toc_lists_every_notebook_in_order():
    nbs = notebooks_in_toc(ROOT)
    assert [p.stem for p in nbs] == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_source_notebooks_are_output_free_and_parametrised():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, 4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.outputs or c.execution_count for c in code), f"{path.name} carries outputs"
        assert any("parameters" in c.metadata.get("tags", []) for c in code), f"{path.name} has no parameters cell"


def test_every_chapter_names_its_parameters_only_in_its_parameters_cell():
    """Each chapter hands the parameters its ``parameters`` cell declares to its ``Chapter`` (or
    ``open_chapter``, ``check_parameters``) at once, ``**declared(globals())``: a parameter is
    named in that cell and nowhere else in the notebook's set-up."""
    import ast

    import nbformat

    for nb in notebooks_in_toc(ROOT):
        calls = [node for cell in nbformat.read(nb, 4).cells if cell.cell_type == "code"
                 for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", None) in ("Chapter", "open_chapter", "check_parameters")]
        assert calls, f"{nb.name} builds no Chapter"
        assert all(not c.keywords[0].arg and ast.unparse(c.keywords[0].value) == "declared(globals())"
                   and len(c.keywords) == 1 for c in calls[:1]), f"{nb.name}: {ast.unparse(calls[0])}"


@pytest.mark.slow
def test_runner_injects_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ALLLIB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "nodata"
    empty.mkdir()
    manifest = run_book("quick", data=str(empty), overrides=[("n_synthetic", "24"), ("01_datasets.seed", "5")],
                        out=tmp_path / "build", only=["01_datasets"], html=False, progress=lambda *_: None)
    entry = manifest["notebooks"][0]
    assert entry["status"] == "ok" and entry["parameters"]["n_synthetic"] == 24 and entry["parameters"]["seed"] == 5
    assert entry["dataset"] == "synthetic"
    executed = nbformat.read(tmp_path / "build" / "executed" / "notebooks" / "01_datasets.ipynb", 4)
    text = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "synthetic smears (24 images, 24 groups)" in text and "seed 5" in text
    assert json.loads((tmp_path / "build" / "manifest.json").read_text())["versions"]["alllib"]


@pytest.mark.slow
def test_runner_rejects_bad_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ParameterError, match="'seed' must be a seed, .*not 'zero'"):
        run_book("quick", overrides=[("seed", "'zero'")], out=tmp_path, only=["01_datasets"], html=False)
    with pytest.raises(ParameterError, match="'backbone' must be one of"):
        run_book("quick", overrides=[("backbone", "alexnet")], out=tmp_path, only=["05_features"], html=False)
    with pytest.raises(ParameterError, match="has no parameter backbone"):
        run_book("quick", overrides=[("01_datasets.backbone", "vgg19")], out=tmp_path, only=["01_datasets"],
                 html=False, progress=lambda *_: None)


@pytest.mark.slow
def test_chapter_rejects_wrong_type_under_papermill(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="parameter 'n_synthetic' must be a positive integer, not 'many'"):
        pm.execute_notebook(str(ROOT / "notebooks" / "01_datasets.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"n_synthetic": "many", "results_dir": str(tmp_path)},
                            cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")


@pytest.mark.slow
def test_failure_names_notebook_and_cell(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("seed = 0"), nbformat.v4.new_code_cell("1 / 0")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "broken.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/broken\n")
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / "build" / "html"
    stale.mkdir(parents=True)
    (stale / "index.html").write_text("an earlier book")
    with pytest.raises(BookError, match=r"notebooks/broken.ipynb failed in cell 1 .*ZeroDivisionError.*"
                                        r"The previous book in .*html was removed"):
        run_book("quick", out=tmp_path / "build", html=False, progress=lambda *_: None)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["notebooks"][0]["status"] == "failed"
    assert not stale.exists()  # a failed run never leaves an earlier book looking current


def _tiny_book(root, names):
    (root / "notebooks").mkdir()
    for name in names:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("seed = 0\nresults_dir = None"), nbformat.v4.new_code_cell("print(seed)")]
        nb.cells[0].metadata["tags"] = ["parameters"]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    chapters = "\n".join(f"  - file: notebooks/{n}" for n in names[1:])
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: notebooks/{names[0]}\nchapters:\n{chapters}\n")


@pytest.mark.slow
def test_the_manifest_keeps_every_finished_chapter_while_the_run_goes_on(tmp_path, monkeypatch):
    """A long run (the full profile takes hours) stopped midway still says what each finished
    chapter took."""
    _tiny_book(tmp_path, ["a", "b"])
    monkeypatch.chdir(tmp_path)
    seen = []

    def progress(line):
        if line.startswith("[2/2]"):  # b starts: a is done
            seen.append(json.loads((tmp_path / "_build" / "manifest.json").read_text())["notebooks"])

    run_book("quick", out=tmp_path / "_build", html=False, progress=progress)
    assert [e["notebook"] for e in seen[0]] == ["notebooks/a.ipynb"] and seen[0][0]["peak_memory_mb"] > 0


@pytest.mark.slow
def test_only_updates_its_entry_in_the_manifest(tmp_path, monkeypatch):
    _tiny_book(tmp_path, ["a", "b"])
    monkeypatch.chdir(tmp_path)
    run_book("quick", out=tmp_path / "_build", html=False, progress=lambda *_: None)
    run_book("quick", overrides=[("b.seed", "7")], out=tmp_path / "_build", only=["b"], html=False,
             progress=lambda *_: None)
    manifest = json.loads((tmp_path / "_build" / "manifest.json").read_text())
    entries = {e["notebook"]: e for e in manifest["notebooks"]}
    assert list(entries) == ["notebooks/a.ipynb", "notebooks/b.ipynb"] and manifest["only"] == ["b"]
    assert entries["notebooks/b.ipynb"]["parameters"]["seed"] == 7 and entries["notebooks/a.ipynb"]["status"] == "ok"
    # the page shows its parameters once, the results folder relative to the project, not the
    # build machine's path
    cells = nbformat.read(tmp_path / "_build" / "executed" / "notebooks" / "b.ipynb", 4).cells
    shown = [c for c in cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert len(shown) == 1 and "seed = 7" in shown[0].source
    assert 'results_dir = "_build/results"' in shown[0].source and str(tmp_path) not in shown[0].source
    assert manifest["run_id"]  # --only continues the run it updates
    stale = tmp_path / "_build" / "results" / "z.json"
    stale.write_text("{}")
    run_book("quick", out=tmp_path / "_build", only=["a"], html=False, progress=lambda *_: None)
    assert stale.exists() and json.loads((tmp_path / "_build" / "manifest.json").read_text())["run_id"] == manifest["run_id"]
    run_book("quick", out=tmp_path / "_build", html=False, progress=lambda *_: None)
    assert not stale.exists()  # a new run starts from an empty results folder


@pytest.mark.slow
def test_chapters_keep_their_figures_whatever_the_shells_backend(tmp_path, monkeypatch):
    """With MPLBACKEND=Agg in the environment (as in CI), plt.show() must still put the figure
    into the executed notebook, or the book has no plots."""
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("seed = 0"),
                nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "plot.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/plot\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_book("quick", out=tmp_path / "_build", html=False, progress=lambda *_: None)
    outputs = nbformat.read(tmp_path / "_build" / "executed" / "notebooks" / "plot.ipynb", 4).cells[-1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_a_chapter_finds_data_in_the_projects_data_folder(tmp_path, monkeypatch, synthetic):
    """Data placed in <project>/data/ as the README says is what a chapter run in notebooks/ uses."""
    import papermill as pm

    from .conftest import write_rgb

    monkeypatch.delenv("ALLLIB_DATA", raising=False)
    monkeypatch.setenv("ALLLIB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/02_preprocessing\n")
    (tmp_path / "notebooks").mkdir()
    for i in range(6):
        write_rgb(tmp_path / "data" / "ALL_IDB2" / "img" / f"Im{i + 1:03d}_{i % 2}.tif", synthetic.image(i))
    out = tmp_path / "notebooks" / "out.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "02_preprocessing.ipynb"), str(out), cwd=str(tmp_path / "notebooks"),
                        parameters={"results_dir": str(tmp_path / "r")}, progress_bar=False, kernel_name="python3")
    assert json.loads((tmp_path / "r" / "02_preprocessing.json").read_text())["dataset"] == "all_idb2"
    assert not (tmp_path / "data" / "cache").exists()


@pytest.fixture
def featurizer_calls(monkeypatch, tmp_path):
    """Chapters featurise with colour statistics (cheap); the list records each call's size. The
    cache (and so the protocol memo) is the test's own: a memo left by an earlier run of the tests
    would hide the computation they count."""
    from alllib.book.chapter import Chapter

    monkeypatch.setenv("ALLLIB_CACHE", str(tmp_path / "cache"))

    from .conftest import colour_features

    calls = []

    class Fake:
        description, settings, weights_label = "colour statistics", {}, None

        def __call__(self, ds):
            calls.append(len(ds))
            return colour_features(ds)

    monkeypatch.setattr(Chapter, "featurizer", lambda self, **kw: Fake())
    return calls


def test_chapter_compare_is_memoised(tmp_path, featurizer_calls):
    """Chapters needing the same comparison compute it once; another argument recomputes."""
    from alllib.book.chapter import Chapter

    calls = featurizer_calls
    ch = Chapter("t", dataset="synthetic", n_synthetic=20, results_dir=str(tmp_path))
    args = dict(search="none", n_splits=2, n_repeats=1)
    paper, honest = ch.compare(None, 12, **args)
    n = len(calls)
    again = Chapter("t2", dataset="synthetic", n_synthetic=20, results_dir=str(tmp_path)).compare(None, 12, **args)
    assert len(calls) == n  # read back, not recomputed
    assert again[1]["svm"].fold_metrics().equals(honest["svm"].fold_metrics())
    ch.compare(None, None, **args)
    assert len(calls) > n
    assert ch.targets(12, 2) == (12, 6) and ch.targets(3, 5) == (10, 8)


def test_chapter_compare_memo_follows_the_data_content(tmp_path, featurizer_calls):
    """Same ids, other pixels or other groups: the memo is not reused."""
    from alllib.book.chapter import Chapter

    calls = featurizer_calls
    args = dict(search="none", n_splits=2, n_repeats=1)
    ch = Chapter("t", dataset="synthetic", n_synthetic=20, results_dir=str(tmp_path))
    ch.compare(None, None, **args)
    n = len(calls)
    other = Chapter("t", dataset="synthetic", n_synthetic=20, results_dir=str(tmp_path))
    other.ds.keyer = lambda row: "changed:" + str(row["id"])  # the same ids, other image content
    other.compare(None, None, **args)
    assert len(calls) > n
    n = len(calls)
    regrouped = Chapter("t", dataset="synthetic", n_synthetic=20, results_dir=str(tmp_path))
    regrouped.ds.table["group"] = regrouped.ds.table["id"].str[:-1]
    regrouped.compare(None, None, **args)
    assert len(calls) > n


def test_the_summary_never_mixes_runs(tmp_path, monkeypatch):
    from alllib.book.chapter import Chapter, load_results
    from alllib.book.reported import results_frame

    from .conftest import protocol_result as _result

    frame = results_frame(_result("paper", [0.9]), dataset="synthetic", backbone="efficientnet_lite0")
    for run, chapter in (("old", "06_classifiers"), ("old", "09_leakage"), ("new", "09_leakage")):
        monkeypatch.setenv("ALLLIB_RUN_ID", run)
        Chapter(chapter, dataset="synthetic", n_synthetic=4, results_dir=str(tmp_path)).save(frame)
    ours, metas = load_results(str(tmp_path))
    assert [m["chapter"] for m in metas] == ["09_leakage"] and set(ours["run_id"]) == {"new"}
    monkeypatch.delenv("ALLLIB_RUN_ID")
    assert [m["chapter"] for m in load_results(str(tmp_path), run="old")[1]] == ["06_classifiers"]
    assert [m["run_id"] for m in load_results(str(tmp_path))[1]] == ["new"]  # by hand: the latest run


def test_a_backbone_asked_for_by_name_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    """One rule for missing weights: a chapter asked for DenseNet-201 that has no weights here stops
    with the library's error naming the file to place; it never runs another network instead."""
    import alllib.features.backbones as B
    from alllib.book.chapter import Chapter
    from alllib.features import WeightsUnavailableError

    monkeypatch.setattr(B, "keras_home", lambda: tmp_path / "keras")
    monkeypatch.setitem(B._FAILED_DOWNLOADS, "densenet201", "offline")
    with pytest.raises(WeightsUnavailableError, match="densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        Chapter("t", dataset="synthetic", n_synthetic=4, backbone="densenet201", results_dir=str(tmp_path))
    ch = Chapter("t", dataset="synthetic", n_synthetic=4, backbone="efficientnet_lite0", results_dir=str(tmp_path))
    assert ch.backbone == "efficientnet_lite0"
    with pytest.raises(WeightsUnavailableError, match="VGG-19"):
        ch.available_backbones("efficientnet_lite0, vgg19")
    usable, missing, box = ch.available_backbones("available")
    assert usable == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert "vgg19" in missing and "vgg19_weights" in repr(box)


def test_summary_table(tmp_path):

    from alllib.book.chapter import summary_table
    from alllib.book.reported import results_frame

    from .conftest import protocol_result as _result

    ours = pd.concat([
        results_frame(_result("paper", [0.9]), dataset="all_idb2", backbone="x", condition="aug"),
        results_frame(_result("honest", [0.8, 0.7]), dataset="all_idb2", backbone="x", condition="aug"),
    ]).assign(chapter="09_leakage")
    t = summary_table(ours, "VIII", "09_leakage").data
    assert t.loc[("all_idb2", "svm", "paper protocol (x)"), "aug"] == 90
    assert t.loc[("all_idb2", "svm", "reported (DenseNet-201)"), "aug"] == 100
    # our numbers never sit under the paper's network name
    assert not any(f.startswith(("paper protocol (DenseNet", "honest (DenseNet")) for f in t.index.get_level_values(2))
    assert "no results" in summary_table(ours, "IV", "07_backbones")
    other = ours.assign(dataset="synthetic")
    synthetic = summary_table(other, "VIII", "09_leakage").data
    assert list(synthetic.columns) == ["aug"]
    assert synthetic.index.get_level_values(2).tolist() == ["paper protocol (x)", "honest (x)"]
    html = summary_table(other, "VIII", "09_leakage").to_html()
    assert "nan" not in html.lower() and "75.00 %" in html


def test_backbone_table():

    from alllib.book.reported import backbone_table, results_frame

    from .conftest import protocol_result as _result

    ours = pd.concat([results_frame(_result(p, v), dataset="all_idb2", backbone=b)
                      for b in ("densenet201", "efficientnet_lite0") for p, v in (("paper", [0.9]), ("honest", [0.8, 0.7]))])
    t = backbone_table(ours, "all_idb2")
    assert t.loc[("DenseNet-201", "svm"), "reported"] == 100
    assert t.loc[("DenseNet-201", "svm"), "paper protocol"] == 90
    assert pd.isna(t.loc[("EfficientNet-Lite0", "svm"), "reported"])  # not in the paper: nothing filled in
    assert t.loc[("EfficientNet-Lite0", "svm"), "honest"] == pytest.approx(75)


def test_no_made_up_repository_buttons(tmp_path, monkeypatch):
    """Launch and repository buttons only for a repository given at build time."""
    from alllib.book.build import book_config

    plain = book_config(ROOT)
    assert "repository" not in plain and "launch_buttons" not in plain
    assert plain["html"]["use_repository_button"] is False and plain["html"]["use_issues_button"] is False
    real = book_config(ROOT, "https://github.com/someone/alllib-book/")
    assert real["repository"]["url"] == "https://github.com/someone/alllib-book"
    assert real["html"]["use_repository_button"] and real["launch_buttons"]["binderhub_url"]
    monkeypatch.chdir(ROOT)
    with pytest.raises(ParameterError, match="--repository must be https://github.com/OWNER/NAME"):
        run_book("quick", out=tmp_path, html=False, repository="github.com/x", progress=lambda *_: None)


@pytest.mark.slow
def test_runner_output_is_progress_and_chatter_goes_to_a_log(tmp_path, monkeypatch, capfd):
    _tiny_book(tmp_path, ["a"])
    nb = nbformat.read(tmp_path / "notebooks" / "a.ipynb", 4)
    nb.cells.append(nbformat.v4.new_code_cell("import os\nos.write(2, b'kernel chatter on stderr\\n')"))
    nbformat.write(nb, tmp_path / "notebooks" / "a.ipynb")
    monkeypatch.chdir(tmp_path)
    lines = []
    run_book("quick", out=tmp_path / "_build", html=False, progress=lines.append)
    captured = capfd.readouterr()
    assert "kernel chatter" not in captured.err and "kernel chatter" not in captured.out
    assert "kernel chatter on stderr" in (tmp_path / "_build" / "run.log").read_text()
    assert any("run.log" in line for line in lines)


def test_every_chapters_defaults_are_the_quick_profile():
    """A chapter opened in JupyterLab and run as it is computes what the quick book shows: its
    parameters cell holds the quick profile's values (the book's CI build checks those pages)."""
    import ast

    import papermill as pm

    from alllib.book.parameters import profile_parameters

    for nb in notebooks_in_toc(ROOT):
        declared = pm.inspect_notebook(str(nb))
        for name, value in profile_parameters("quick", nb.stem, declared).items():
            assert ast.literal_eval(declared[name]["default"]) == value, f"{nb.name}: {name}"


@pytest.mark.slow
def test_chapters_side_by_side_keep_the_book_order_and_name_a_failure(tmp_path, monkeypatch):
    _tiny_book(tmp_path, ["a", "b", "c", "d"])
    monkeypatch.chdir(tmp_path)
    manifest = run_book("quick", out=tmp_path / "_build", html=False, jobs=2, progress=lambda *_: None)
    assert [e["notebook"] for e in manifest["notebooks"]] == [f"notebooks/{n}.ipynb" for n in "abcd"]
    assert all(e["status"] == "ok" for e in manifest["notebooks"])
    broken = nbformat.read(tmp_path / "notebooks" / "b.ipynb", 4)
    broken.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('chapter b is broken')"))
    nbformat.write(broken, tmp_path / "notebooks" / "b.ipynb")
    with pytest.raises(BookError, match=r"notebooks/b.ipynb failed in cell 3 .*RuntimeError: chapter b is broken"):
        run_book("quick", out=tmp_path / "_build", html=False, jobs=2, progress=lambda *_: None)
    manifest = json.loads((tmp_path / "_build" / "manifest.json").read_text())
    statuses = {e["notebook"]: e["status"] for e in manifest["notebooks"]}
    assert statuses["notebooks/b.ipynb"] == "failed"
    with pytest.raises(ParameterError, match="jobs must be a positive integer"):
        run_book("quick", out=tmp_path / "_build", html=False, jobs=0)


def test_a_page_shows_its_parameters_once_and_no_machine_path(tmp_path):
    """The values papermill injected go into the chapter's own parameters cell (its comments kept),
    the injected cell goes, and no absolute path of the build machine is left."""
    import nbformat

    from alllib.book.runner import _one_parameters_cell

    nb = nbformat.v4.new_notebook()
    defaults = nbformat.v4.new_code_cell('data_dir = None   # the data\nseed = 0          # every random step\n'
                                         'results_dir = None  # results')
    defaults.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell(f'# Parameters\ndata_dir = "{tmp_path / "lab-data"}"\nseed = 3\n'
                                         f'results_dir = "{tmp_path / "project" / "_build" / "results"}"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [defaults, injected, nbformat.v4.new_code_cell("print(seed)")]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    _one_parameters_cell(path, tmp_path / "project", str(tmp_path / "lab-data"))
    cells = nbformat.read(path, 4).cells
    assert len(cells) == 2 and str(tmp_path) not in cells[0].source
    assert cells[0].source.splitlines() == ['data_dir = "<data>"  # the data', "seed = 3          # every random step",
                                            'results_dir = "_build/results"  # results']


def test_a_quick_run_says_what_it_leaves_out_and_the_classifiers_are_checked():
    from alllib.book.chapter import Chapter
    from alllib.book.prose import full_profile_note

    assert full_profile_note("full", "x", ["y"]) == "" and full_profile_note("quick", "x", []) == ""
    ch = Chapter("09_leakage", dataset="synthetic", n_synthetic=8, classifiers="svm,rf", profile="quick")
    assert ch.classifiers == ("svm", "rf")
    said = ch.left_out("the paper's size")
    assert "the xgboost classifier, the paper's size" in said and "--profile full --only 09_leakage" in said
    assert Chapter("09_leakage", dataset="synthetic", n_synthetic=8, profile="full").left_out() == ""
    with pytest.raises(ParameterError, match="comma list of svm, rf, xgboost"):
        check_parameters(classifiers="svm,knn")
    with pytest.raises(ParameterError, match="profile"):
        check_parameters(profile="medium")


def test_the_chapter_budget_names_a_chapter_that_grew():
    """CI's budget check (benchmarks/chapter_times.py --budget): every chapter of the book has a
    budget, and a chapter over twice its share is named."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_times", ROOT / "benchmarks" / "chapter_times.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    budget = json.loads((ROOT / ".ci" / "chapter_budget.json").read_text())["quick"]
    assert set(budget) - {"total"} == {nb.stem for nb in notebooks_in_toc(ROOT)}
    times = pd.Series({**{k: v for k, v in budget.items() if k != "total"}, "total (run)": 500.0})
    assert tool.over_budget(times, budget) == []
    times["11_attribution"] = 2.5 * budget["11_attribution"]
    (line,) = tool.over_budget(times, budget)
    assert line.startswith("11_attribution took") and "it grew" in line


def test_a_companion_dataset_is_drawn_per_group_or_refused_with_the_reason(tmp_path, synthetic):
    from alllib.book.chapter import Chapter

    from .conftest import write_cnmc_tree

    def companion(data, **kw):
        ch = Chapter("00_test", dataset="synthetic", n_synthetic=8, data_dir=str(data), results_dir=str(tmp_path))
        return ch.companion("cnmc", **kw)

    ds, why = companion(tmp_path / "nothing")
    assert ds is None and why.title == "Not available"
    assert repr(why).startswith("Not available: C-NMC-2019 is not available on this machine, so this section computes")
    ds, why = companion(write_cnmc_tree(tmp_path / "six", synthetic), per_group=2)
    assert why is None and len(ds) == 12 and (ds.table.groupby("group").size() == 2).all()
    again, _ = companion(tmp_path / "six", per_group=2)
    assert again.ids.tolist() == ds.ids.tolist()  # the chapter's seed: the same cells
    ds, why = companion(write_cnmc_tree(tmp_path / "three", synthetic, subjects=3))
    assert ds is None and why.title == "Not computed" and "cannot be split by group" in repr(why)


def test_peak_memory_adds_up_processes_that_run_side_by_side():
    """A chapter's kernel with a child of its own (a network fine-tuned apart) holds both at once:
    the peak is their sum, not the larger of the two."""
    import subprocess
    import sys

    from alllib.book.runner import PeakMemory

    hold = "b = bytearray(250 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(1.5)"
    with PeakMemory(interval=0.05) as peak:
        both = [subprocess.Popen([sys.executable, "-c", hold]) for _ in range(2)]
        for p in both:
            p.wait()
    assert peak.megabytes >= 480
