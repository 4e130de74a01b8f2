"""What a chapter needs: checked parameters, its data, its network, a banner, its results.

A chapter starts with ``ch = Chapter("09_leakage", dataset=dataset, backbone=backbone, ...)``:
the parameters are checked (a wrong type or an unknown backbone stops the page with a clear
message), the dataset is loaded, the backbone resolved, and a banner says which dataset and
network produced the page's numbers. ``ch.save(frame)`` stores the chapter's results for the
summary chapter, which reads them back with :func:`load_results`. The runner that executes the
chapters and builds the book is :mod:`alllib.book.runner`.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from html import escape

import numpy as np
import pandas as pd

from alllib import paths
from alllib.book.parameters import PROFILES, check_parameters, comma_list
from alllib.book.prose import Box
from alllib.data import Dataset, DatasetError, find_all_idb2, load_dataset
from alllib.features import (
    BACKBONES,
    Featurizer,
    imagenet_weights,
    imagenet_weights_available,
    keras_weights_file,
    requested_backbones,
    resolve_backbone,
)
from alllib.learn.classifiers import CLASSIFIERS
from alllib.learn.evaluation import dataset_digest, results_from_json, results_to_json, split_problem
from alllib.learn.protocols import honest_protocol, paper_protocol
from alllib.memo import digest, read_memo, source_digest, write_memo
from alllib.paths import shown_path

__all__ = ["Chapter", "open_chapter", "record", "load_results", "run_id", "summary_table"]

class Chapter:
    """What a chapter needs: checked parameters, its dataset, its backbone, and a banner."""

    def __init__(self, name: str, *, dataset: str = "auto", data_dir: str | None = None, backbone: str | None = None,
                 n_synthetic: int = PROFILES["quick"]["n_synthetic"], seed: int = 0, results_dir: str | None = None,
                 **other):
        check_parameters(dataset=dataset, data_dir=data_dir, n_synthetic=n_synthetic, seed=seed,
                         results_dir=results_dir, **other, **({} if backbone is None else {"backbone": backbone}))
        self.name, self.seed, self.params = name, seed, {"dataset": dataset, "backbone": backbone, "seed": seed,
                                                          **other}
        self.results, self.data_dir = paths.results_dir(results_dir), data_dir
        if dataset == "auto":  # ALL-IDB2 where present, else the synthetic smears
            dataset = "all_idb2" if find_all_idb2(data_dir) is not None else "synthetic"
        kwargs = {"n": n_synthetic, "seed": seed} if dataset == "synthetic" else {}
        try:
            self.ds = load_dataset(dataset, data_dir, verbose=False, **kwargs)
        except DatasetError as err:
            raise DatasetError(f"chapter {name!r}: {err}") from err
        self.backbone = resolve_backbone(backbone, verbose=False) if backbone else None
        if backbone not in (None, "auto"):
            imagenet_weights(self.backbone)  # asked for by name: its weights or a clear error, never another network
        self._featurizers: dict[str, Featurizer] = {}

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The classifiers this run trains (the ``classifiers`` parameter; every one by default)."""
        return tuple(comma_list(self.params.get("classifiers") or ",".join(CLASSIFIERS)))

    def left_out(self, *more: str) -> str:
        """One sentence naming what this run leaves out and the full profile computes: the
        classifiers it does not train, and ``more``; empty in the full profile
        (:func:`alllib.book.prose.full_profile_note`)."""
        from alllib.book.prose import full_profile_note

        skipped = [f"the {c} classifier" for c in CLASSIFIERS if c not in self.classifiers]
        return full_profile_note(self.params.get("profile", "quick"), self.name, skipped + list(more))

    @property
    def real(self) -> bool:
        return self.ds.name != "synthetic"

    @property
    def dataset_label(self) -> str:
        names = {"all_idb2": "the real ALL-IDB2", "cnmc": "the real C-NMC-2019", "synthetic": "synthetic smears"}
        return f"{names.get(self.ds.name, self.ds.name)} ({len(self.ds)} images, {self.ds.table['group'].nunique()} groups)"

    @property
    def backbone_label(self) -> str:
        if self.backbone is None:
            return "none"
        label = BACKBONES[self.backbone].label
        if self.backbone != "densenet201":
            label += " (standing in for the paper's DenseNet-201, whose ImageNet weights are not available here)" \
                if self.params.get("backbone") == "auto" else " (not the paper's DenseNet-201)"
        return label

    def banner(self) -> Box:
        """A box saying which data and network produced the page's numbers."""
        parts = [f"<strong>Results on this page</strong> were computed on <strong>{escape(self.dataset_label)}</strong>"]
        if self.backbone:
            parts.append(f" with features from <strong>{escape(self.backbone_label)}</strong>")
        parts.append(f", seed {self.seed}.")
        if not self.real:
            parts.append("<br><em>Synthetic data</em> (no real dataset was found, or synthetic data was asked for): "
                         "the numbers show the method at work; they are not the paper's setting.")
        return Box("".join(parts), "note" if self.real else "warning")

    def available_backbones(self, spec: str = "available") -> tuple[list[str], list[str], Box]:
        """The backbones of ``spec`` (:func:`~alllib.features.requested_backbones`) whose ImageNet
        weights are here, those without, and a box naming them and the file each missing one needs:
        a chapter that compares networks runs those it has and never fakes the others. Networks
        asked for by name must all be there (:func:`~alllib.features.imagenet_weights` says which file
        to place otherwise); ``"available"`` takes those that are."""
        wanted = requested_backbones(spec)
        usable = [b for b in wanted if imagenet_weights_available(b)]
        missing = [b for b in wanted if b not in usable]
        if missing and spec != "available":
            imagenet_weights(missing[0])
        items = "".join(f"<li>{BACKBONES[b].label}: place <code>{escape(keras_weights_file(b).name)}</code> in "
                        f"<code>{escape(shown_path(keras_weights_file(b).parent))}</code></li>" for b in missing)
        text = (f"<strong>Networks on this page</strong> (ImageNet weights found here): "
                f"{', '.join(BACKBONES[b].label for b in usable) or 'none'}."
                + (f"<br><strong>Not available</strong> (no ImageNet weights here, so not run):<ul>{items}</ul>"
                   if missing else ""))
        return usable, missing, Box(text, "warning" if missing else "note")

    def shown_table(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """``frame`` (by default the first rows of the dataset's table) as a page shows it: file
        paths relative to the data folder (``<data>/ALL_IDB2/img/Im001_1.tif``), never the build
        machine's (:func:`alllib.paths.shown_path`)."""
        frame = self.ds.table.head() if frame is None else frame
        if "path" not in frame.columns:
            return frame
        return frame.assign(path=[shown_path(p, self.data_dir) for p in frame["path"]])

    def targets(self, target_per_class: int, n_splits: int = 5) -> tuple[int, int]:
        """Images per class after balancing: for the paper protocol (at least the largest class),
        and for the honest protocol's training side (the same training size after a
        ``(n_splits - 1) / n_splits`` split, as the paper's 80 %)."""
        paper = max(target_per_class, int(np.bincount(self.ds.labels).max()))
        return paper, round(paper * (n_splits - 1) / n_splits)

    def featurizer(self, segmentation: dict | None = None, backbone: str | None = None, **settings) -> Featurizer:
        """The chapter's :class:`~alllib.features.Featurizer` for a segmentation setting (memoised)."""
        bb = backbone or self.backbone or "auto"
        key = json.dumps([bb, segmentation, settings], sort_keys=True, default=str)
        if key not in self._featurizers:
            self._featurizers[key] = Featurizer(bb, segmentation=segmentation, seed=self.seed, **settings)
        return self._featurizers[key]

    def companion(self, dataset: str, per_group: int | None = None) -> tuple[Dataset | None, Box | None]:
        """A second dataset the chapter also studies, from its data folder, ready to split by group:
        ``(dataset, None)``, with at most ``per_group`` images of each group drawn with the chapter's
        seed (None: every image), or ``(None, box)`` where it is absent or cannot be split by group,
        the box saying why (as in :func:`open_chapter`)."""
        try:
            ds = load_dataset(dataset, self.data_dir, verbose=False)
        except DatasetError as err:
            return None, _absent(dataset, err, "section")
        box = _unsplittable(ds, "section")
        return (None, box) if box else (ds.sample_per_group(per_group, seed=self.seed), None)

    def compare(self, segmentation: dict | None, target_per_class: int | None, *, search: str = "small",
                n_splits: int = 5, n_repeats: int = 1, backbone: str | None = None) -> tuple[dict, dict]:
        """The paper protocol and the honest protocol on this chapter's dataset and features.

        ``target_per_class`` is the paper protocol's per-class size after augmentation (``None``:
        no augmentation); the honest protocol augments its training side to the same training
        size (:meth:`targets`). Results are remembered in the cache (:func:`alllib.paths.cache_dir`,
        as JSON: reading it runs no code), keyed by every argument, the dataset's images (their
        content), labels and groups, and the content of the library's source
        (:func:`alllib.memo.source_digest`), so chapters that need the same comparison (Tables IV, VII, VIII
        and the leakage chapter) compute it once, in the tests and the book alike, and a change
        to any input computes it again. The honest protocol keeps each fold's fit as it ends
        (``checkpoint``), so a comparison stopped midway resumes at the next fold.
        """
        paper_t, honest_t = self.targets(target_per_class, n_splits) if target_per_class else (None, None)
        featurize = self.featurizer(segmentation=segmentation, backbone=backbone)
        key = digest({
            "features": featurize.description, "settings": featurize.settings, "paper_t": paper_t,
            "honest_t": honest_t, "search": search, "n_splits": n_splits, "n_repeats": n_repeats, "seed": self.seed,
            "classifiers": self.classifiers,
            "data": dataset_digest(self.ds),
            "code": source_digest(),
        })
        memo = paths.cache_dir() / f"protocols-v{MEMO_VERSION}" / f"{key}.json.gz"
        stored = read_memo(memo)
        if stored is not None:
            return results_from_json(stored["paper"]), results_from_json(stored["honest"])
        paper = paper_protocol(self.ds, featurize, self.classifiers, target_per_class=paper_t, search=search,
                               seed=self.seed)
        honest = honest_protocol(self.ds, featurize, self.classifiers, target_per_class=honest_t, n_splits=n_splits,
                                 n_repeats=n_repeats, search=search, seed=self.seed, checkpoint=True)
        write_memo(memo, {"paper": results_to_json(paper), "honest": results_to_json(honest)})
        return paper, honest

    def save(self, frame: pd.DataFrame | None = None, **meta) -> None:
        """Store the chapter's results (a :func:`alllib.book.reported.results_frame`-shaped table) and
        what produced them, for the summary chapter and the run manifest. A table, series or mapping
        among ``meta`` is stored as its :func:`record`."""
        meta = {k: record(v) if isinstance(v, (pd.DataFrame, pd.Series, dict)) else v for k, v in meta.items()}
        self.results.mkdir(parents=True, exist_ok=True)
        run = run_id()
        if frame is not None:
            frame.assign(run_id=run).to_csv(self.results / f"{self.name}.csv", index=False)
        else:
            (self.results / f"{self.name}.csv").unlink(missing_ok=True)
        weights = next((f.weights_description for f in self._featurizers.values()), None)
        saved = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        info = {"chapter": self.name, "run_id": run, "saved": saved,
                "dataset": self.ds.name, "dataset_source": self.ds.source, "n_images": len(self.ds),
                "backbone": self.backbone, "weights": weights, "params": self.params, **meta}
        path = self.results / f"{self.name}.json"
        path.write_text(json.dumps(info, indent=1, default=str))
        print(f"results of this chapter stored in {shown_path(self.results)}")


def record(table, digits: int | None = 4):
    """A table, a series, a mapping or a list (of them) as a chapter stores it in its results: keys of
    several levels joined with ``" | "``, fractional numbers rounded to ``digits`` (None: as they
    are), counts, text and flags kept, missing values left out.

    >>> record(pd.Series([0.123456, None], index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])))
    {'a | 1': 0.1235}
    """
    if isinstance(table, pd.DataFrame):
        table = dict(table.iterrows())
    if isinstance(table, (pd.Series, dict)):
        key = lambda k: " | ".join(map(str, k)) if isinstance(k, tuple) else k  # noqa: E731
        return {key(k): record(v, digits) for k, v in table.items() if not _missing(v)}
    if isinstance(table, (list, tuple)):
        return [record(v, digits) for v in table]
    if isinstance(table, (str, bool, np.bool_)):
        return table if isinstance(table, str) else bool(table)
    if isinstance(table, (int, np.integer)):
        return int(table)
    return float(table) if digits is None else round(float(table), digits)


def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def open_chapter(name: str, **params) -> tuple[Chapter | None, Box]:
    """A chapter that needs its dataset split by group: ``(chapter, banner)``, or ``(None, box)`` where
    nothing can be computed, the box saying why (the dataset is absent, or a class has a single
    group, as in a partial C-NMC download with one normal subject)."""
    dataset = params.get("dataset", "auto")
    try:
        ch = Chapter(name, **params)
    except DatasetError as err:
        return None, _absent(dataset, err, "chapter")
    box = _unsplittable(ch.ds, "chapter")
    return (None, box) if box else (ch, ch.banner())


def _absent(dataset: str, err: DatasetError, part: str) -> Box:
    return Box(f"{DATASET_NAMES.get(dataset, dataset)} is not available on this machine, so this {part} computes "
               f"nothing ({err}).", title="Not available")


def _unsplittable(ds: Dataset, part: str) -> Box | None:
    problem = split_problem(ds.labels, ds.groups)
    return Box(f"This {DATASET_NAMES.get(ds.name, ds.name)} subset cannot be split by group, so this {part} computes "
               f"nothing ({ds.source.split(' (')[-1].rstrip(')')}: {problem}).", title="Not computed") if problem else None


#: How the pages name the datasets.
DATASET_NAMES = {"cnmc": "C-NMC-2019", "all_idb2": "ALL-IDB2", "synthetic": "the synthetic dataset"}


def summary_table(ours: pd.DataFrame, table: str, chapter: str):
    """What ``chapter`` computed, laid out as the paper's Table ``table`` for each dataset of the
    run (:func:`alllib.book.reported.paper_shape`; Table IV per network,
    :func:`alllib.book.reported.backbone_table`), as a readable table
    (:func:`alllib.book.prose.percent_table`); a sentence where the chapter stored nothing."""
    from alllib.book.prose import percent_table
    from alllib.book.reported import backbone_table, paper_shape

    part = ours[ours["chapter"] == chapter] if len(ours) else ours
    if len(part) == 0:
        return f"chapter {chapter} has no results in this run"
    columns = "metric" if table in ("V", "VI") else "condition"
    frames = {}
    for dataset in dict.fromkeys(part["dataset"]):
        shaped = backbone_table(part, dataset) if table == "IV" else paper_shape(table, part, dataset, columns=columns)
        if len(shaped):
            frames[dataset] = shaped
    if not frames:
        return f"chapter {chapter} stored no results for Table {table}"
    return percent_table(pd.concat(frames, names=["dataset"]), fractions=False, decimals=2)


#: Part of the protocol memo's folder name: bump it when what is stored changes meaning.
MEMO_VERSION = 1


def run_id() -> str:
    """The book run this process belongs to: ``$ALLLIB_RUN_ID``, set by the book runner for
    every chapter of one run, else ``"interactive"`` (a chapter run by hand)."""
    return os.environ.get("ALLLIB_RUN_ID") or "interactive"


def load_results(results_dir: str | None = None, run: str | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The stored results (one long table) and metadata of the chapters of one book run: ``run``,
    else this process's :func:`run_id`, else (a summary opened by hand) the most recent run.
    Results of other runs are never mixed in."""
    folder = paths.results_dir(results_dir)
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if run is None:
        run = os.environ.get("ALLLIB_RUN_ID") or max(metas, key=lambda m: m.get("saved", ""), default={}).get("run_id")
    metas = [m for m in metas if m.get("run_id") == run]
    frames = [pd.read_csv(folder / f"{m['chapter']}.csv").assign(chapter=m["chapter"]) for m in metas
              if (folder / f"{m['chapter']}.csv").is_file()]
    frames = [f[f["run_id"] == run] for f in frames if "run_id" in f]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), metas
