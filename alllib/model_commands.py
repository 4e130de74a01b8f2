"""The commands that work with model files: ``train`` saves one, ``predict`` labels images with it,
``screen`` screens whole slides with it (the command line itself, its parser and the other commands,
is :mod:`alllib.cli`). Each takes the parsed arguments and returns the exit status; what goes wrong
is raised as an :class:`~alllib.errors.AlllibError`, which the command line prints.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alllib.errors import CommandFailed, UsageError, printable

__all__ = ["train_command", "predict_command", "screen_command"]


def _writable_output(path: str, what: str = "--out", example: str = "model.alllib") -> Path:
    """A file to write (the model, a CSV), checked before the work: not a folder, in a folder that
    exists (or can be made) and can be written."""
    import tempfile

    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{what} {out}: a directory; give a file name such as {out / example}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.probe-"):
            pass
    except OSError as err:
        raise UsageError(f"{what} {out}: cannot write there ({err.strerror or err})") from None
    return out


def _writable_folder(path: str, option: str) -> Path:
    """A folder to write into, made where missing; a usage error where it cannot be."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {folder}: cannot make or use that folder ({err.strerror or err})") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {folder}: cannot write there")
    return folder


def train_command(args: argparse.Namespace) -> int:
    """``train``: train on a dataset, say what the model is worth for a new patient, save it."""
    from alllib.data import load_dataset
    from alllib.features import imagenet_weights, resolve_backbone
    from alllib.learn.modelfile import save_model
    from alllib.learn.predict import describe_model
    from alllib.learn.training import train_defaults, train_image_classifier

    out = _writable_output(args.out)  # everything checked before the work
    if args.weights not in ("imagenet", "random") and not Path(args.weights).is_file():
        raise UsageError(f"--weights {args.weights}: no such weights file (or use imagenet / random)")
    backbone = resolve_backbone(args.backbone, verbose=False)
    if args.weights == "imagenet":
        imagenet_weights(backbone)  # the file to place, where it is missing
    ds = load_dataset(args.dataset, args.data, n_synthetic=args.synthetic_n)
    defaults = train_defaults(ds.name)
    method = defaults["segmentation"] if args.segmentation is None else args.segmentation
    seg = None if method == "none" else {"method": method, "k": args.k}
    neighbours = defaults["neighbours"] if args.neighbours is None else args.neighbours
    chosen = [name for name in ("segmentation", "neighbours") if getattr(args, name) is None]
    pipe, meta = train_image_classifier(ds, backbone=backbone, weights=args.weights, classifier=args.classifier,
                                        segmentation=seg, target_per_class=args.augment_to, search=args.search,
                                        seed=args.seed, threshold=args.threshold, neighbours=neighbours)
    if chosen:
        meta["defaults"] = f"{' and '.join(chosen)}: {defaults['why']}"
    try:
        path = save_model(out, pipe, meta)
    except OSError as err:
        raise CommandFailed(f"--out {out}: the model could not be saved ({err.strerror or err}); an earlier file "
                            "there is kept") from None
    print(f"saved to {printable(path)}:\n{describe_model(meta)}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """``predict``: label image files with a saved model (one row each), or one call per person."""
    import csv

    from alllib.features.efficientnet_lite import WeightsFileError
    from alllib.learn.modelfile import ModelFileError, load_model
    from alllib.learn.predict import describe_model, predict_files

    if not args.images and not args.about:
        raise UsageError("give the image files to label (or --about to describe the model)")
    subjects = _read_subjects(args.subjects) if args.subjects else None  # checked before any work
    pipeline, meta = load_model(args.model)
    if args.about:
        print(f"# {printable(args.model)}\n{describe_model(meta)}", file=sys.stderr if args.images else sys.stdout)
        if not args.images:
            return 0
    try:
        rows = predict_files(pipeline, args.images, metadata=meta, neighbours=args.neighbours, subjects=subjects)
    except WeightsFileError as err:  # the weights the model vouches for, unreadable: the model cannot be used
        raise ModelFileError(f"{args.model}: its network cannot be built ({err})") from None
    for r in rows:
        if r.status != "ok":
            print(f"{r.status}: {printable(r.message)}", file=sys.stderr)
    k = (meta.get("neighbours") or 0) if args.neighbours is None else args.neighbours
    alone = sum(r.label is not None and not r.corrected for r in rows)
    if k and alone:
        print(f"note: the neighbourhood correction (k = {k}) mixes a cell only with cells of its own person; {alone} "
              "labelled image(s) had no other cell of a known person in this batch and were left as they were "
              "(C-NMC names, or --subjects CSV, say who is who)", file=sys.stderr)
    if args.by_subject or args.subjects:
        return _print_subjects(args, rows, subjects)
    if args.csv:  # the csv module quotes newlines and tabs; bytes that are not UTF-8 are escaped
        w = csv.writer(sys.stdout)
        w.writerow(["image", "status", "label", "class", "probability_blast", "message"])
        for r in rows:
            w.writerow([printable(r.image, controls=False), r.status, "" if r.label is None else r.label, r.label_name,
                        "" if r.label is None else f"{r.probability:.4f}", printable(r.message, controls=False)])
    else:
        print(f"# model: {meta.get('classifier')} on {meta.get('backbone_label')} features "
              f"({meta.get('weights')} weights), trained on {meta.get('training_data', {}).get('dataset')}",
              file=sys.stderr)
        for r in rows:
            if r.label is not None:
                flag = "" if r.status == "ok" else f"\t(warning: {printable(r.message.split(': ', 1)[-1])})"
                print(f"{printable(r.image)}\t{r.label}\t{r.label_name}\tp(blast)={r.probability:.3f}{flag}")
    return 0 if all(r.status == "ok" for r in rows) else 1


def _read_subjects(path: str) -> dict[str, str]:
    """``--subjects``: a CSV of ``image, subject`` rows (UTF-8), read and checked before any image
    is labelled; a :class:`UsageError` says what is wrong with it."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, encoding="utf-8", keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UsageError(f"--subjects {path}: not a readable UTF-8 CSV ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''})") from None
    missing = {"image", "subject"} - set(table.columns)
    if missing:
        raise UsageError(f"--subjects {path}: needs the columns image and subject, found "
                         f"{', '.join(map(repr, table.columns[:10])) or 'none'}")
    return dict(zip(table["image"], table["subject"]))


def _print_subjects(args: argparse.Namespace, rows, subjects: dict[str, str] | None) -> int:
    """``predict --by-subject``: one row per subject (CSV with ``--csv``)."""
    from alllib.learn.predict import subject_calls

    calls = subject_calls(rows, subjects)
    if args.csv:
        calls.round(4).to_csv(sys.stdout)
    else:
        print(calls.to_string(float_format=lambda v: f"{v:.3f}"))
    if calls.attrs["unassigned"]:
        print(f"{calls.attrs['unassigned']} image(s) not labelled or without a known subject: left out of the calls",
              file=sys.stderr)
    return 0 if all(r.status == "ok" for r in rows) else 1


def screen_command(args: argparse.Namespace) -> int:
    """``screen``: find, label and count the white cells of whole slides, and call each slide."""
    import csv

    import numpy as np

    from alllib.features.efficientnet_lite import WeightsFileError
    from alllib.learn.modelfile import ModelFileError, load_model
    from alllib.learn.screening import SlideRule, overlay, screen_files

    cells_out = _writable_output(args.cells_csv, "--cells-csv", "cells.csv") if args.cells_csv else None
    overlays = _writable_folder(args.overlays, "--overlays") if args.overlays else None
    pipeline, meta = load_model(args.model)
    rule = SlideRule.from_metadata(meta)
    print(f"# rule: {rule.describe()}", file=sys.stderr)
    written: set[str] = set()

    def draw(screen, image):
        import cv2

        stem = Path(screen.slide).stem
        name, i = f"{stem}.png", 1
        while name in written:  # two slides of one name from different folders
            name, i = f"{stem}_{i}.png", i + 1
        written.add(name)
        picture = overlay(image, screen.cells, screen.found.diameter)
        if not cv2.imwrite(str(overlays / name), np.ascontiguousarray(picture[:, :, ::-1])):
            raise CommandFailed(f"--overlays {overlays}: {name} could not be written")

    try:
        screens = screen_files(pipeline, args.slides, metadata=meta, rule=rule, progress=not args.csv,
                               each=draw if overlays else None)
    except WeightsFileError as err:
        raise ModelFileError(f"{args.model}: its network cannot be built ({err})") from None
    for s in screens:
        if s.status != "ok":
            print(f"{s.status}: {printable(s.message)}", file=sys.stderr)
    if args.csv:
        w = csv.writer(sys.stdout)
        w.writerow(["slide", "status", "cells", "blasts", "blast_share", "call", "message"])
        for s in screens:
            m = s.summary
            w.writerow([printable(s.slide, controls=False), s.status, m.get("cells", ""), m.get("blasts", ""),
                        f"{m['blast_share']:.4f}" if m.get("cells") else "", m.get("call", ""),
                        printable(s.message, controls=False)])
    else:
        for s in screens:
            if s.status == "error":
                continue
            m = s.summary
            share = (f"{m['blast_share']:.1%} (95 % interval {m['share_low']:.1%} to {m['share_high']:.1%})"
                     if m["cells"] else "-")
            print(f"{printable(s.slide)}\t{m['call']}\t{m['blasts']} of {m['cells']} cells called blasts, {share}")
    if cells_out is not None:
        try:
            with open(cells_out, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["slide", "x", "y", "label", "probability_blast"])
                for s in (s for s in screens if len(s.cells)):  # a refused file has no cells
                    for x, y, label, p in s.cells[["x", "y", "label", "probability_blast"]].itertuples(index=False):
                        w.writerow([printable(s.slide, controls=False), int(x), int(y), int(label), f"{p:.4f}"])
        except OSError as err:
            raise CommandFailed(f"--cells-csv {cells_out}: could not be written ({err.strerror or err})") from None
    return 0 if all(s.status == "ok" for s in screens) else 1
