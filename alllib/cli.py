"""The command line: ``python -m alllib <command>``.

``datasets``  describe the datasets found in the data folder.
``train``     train an image classifier on a dataset and save it.
``predict``   label images with a saved model.
``book``      run every chapter with papermill and build the HTML book.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .data import DatasetError, data_dir, load_dataset

    print(f"data folder: {data_dir(args.data).resolve()}")
    for name in ("all_idb2", "cnmc"):
        try:
            ds = load_dataset(name, args.data, verbose=False)
        except DatasetError as err:
            print(f"\n{name}: not available ({err})")
            continue
        print(f"\n{name}: {len(ds)} images in {ds.table['group'].nunique()} groups, from {ds.source}")
        print(ds.summary().to_string())
    ds = load_dataset("synthetic", verbose=False, n=args.synthetic_n)
    print(f"\nsynthetic: {len(ds)} images made on demand ({ds.source})")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .models import save_model, train_image_classifier

    ds = load_dataset(args.dataset, args.data, **({"n": args.synthetic_n} if args.dataset == "synthetic" else {}))
    seg = None if args.segmentation == "none" else {"method": args.segmentation, "k": args.k}
    pipe, meta = train_image_classifier(ds, backbone=args.backbone, weights=args.weights, classifier=args.classifier,
                                        segmentation=seg, target_per_class=args.augment_to, search=args.search,
                                        seed=args.seed)
    path = save_model(args.out, pipe, meta)
    print(f"saved {meta['classifier']} on {meta['backbone_label']} ({meta['weights']} weights) features, trained on "
          f"{meta['training_data']['originals']} {ds.name} images, to {path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import csv

    from .data import ImageReadError, read_image
    from .models import ModelFileError, load_model, predict_images

    try:
        pipeline, meta = load_model(args.model)
    except ModelFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    images, failed = [], 0
    paths = []
    for p in args.images:
        try:
            images.append(read_image(p))
            paths.append(p)
        except ImageReadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    if images:
        labels, proba = predict_images(pipeline, images)
        names = {1: "ALL blast", 0: "not a blast"}
        if args.csv:
            w = csv.writer(sys.stdout)
            w.writerow(["image", "label", "class", "probability_blast"])
            for p, lab, pr in zip(paths, labels, proba):
                w.writerow([p, int(lab), names[int(lab)], f"{pr:.4f}"])
        else:
            print(f"# model: {meta.get('classifier')} on {meta.get('backbone_label')} features "
                  f"({meta.get('weights')} weights), trained on {meta.get('training_data', {}).get('dataset')}",
                  file=sys.stderr)
            for p, lab, pr in zip(paths, labels, proba):
                print(f"{p}\t{int(lab)}\t{names[int(lab)]}\tp(blast)={pr:.3f}")
    return 1 if failed else 0


def _cmd_book(args: argparse.Namespace) -> int:
    from .chapter import ParameterError
    from .runner import BookError, run_book

    try:
        manifest = run_book(args.profile, data=args.data, overrides=args.param or [], out=args.out,
                            only=args.only, html=not args.no_html, repository=args.repository)
    except (BookError, ParameterError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{len(manifest['notebooks'])} notebooks in {manifest['total_seconds']:.0f} s; "
          f"manifest: {args.out}/manifest.json" + (f"; book: {manifest['html']}" if "html" in manifest else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m alllib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alllib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("datasets", help="describe the datasets found in the data folder")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("--synthetic-n", type=int, default=260, help="size of the synthetic dataset")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("train", help="train an image classifier and save it")
    p.add_argument("--dataset", default="auto", help="all_idb2, cnmc, synthetic or auto (default)")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("--backbone", default="auto", help="feature extractor (default: auto)")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a weights file")
    p.add_argument("--classifier", default="svm", choices=["svm", "rf", "xgboost"])
    p.add_argument("--segmentation", default="kmeans", choices=["kmeans", "otsu", "none"])
    p.add_argument("--k", type=int, default=3, help="K-means clusters (default 3)")
    p.add_argument("--augment-to", type=int, default=None, help="balance each class to this many images")
    p.add_argument("--search", default="paper", choices=["paper", "small", "none"], help="SVM grid")
    p.add_argument("--synthetic-n", type=int, default=260)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="model.alllib", help="model file to write")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="label images with a saved model")
    p.add_argument("model", help="a model file written by 'train'")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--csv", action="store_true", help="print CSV (image, label, class, probability_blast)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("book", help="run every chapter with papermill and build the HTML book")
    p.add_argument("--profile", default="quick", choices=["quick", "full"],
                   help="quick (default): small counts; full: the paper's sizes")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a parameter in every notebook that has it, or NOTEBOOK.NAME in one "
                        "(e.g. -p seed 1 -p 09_leakage.n_repeats 5); values are read as YAML")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (by file stem)")
    p.add_argument("--out", default="_build", help="build folder (default _build)")
    p.add_argument("--no-html", action="store_true", help="execute the notebooks but do not build the HTML")
    p.add_argument("--repository", metavar="URL",
                   help="the book's public repository (https://github.com/OWNER/NAME): adds repository, issues, "
                        "Binder and Colab buttons; without it the book has none")
    p.set_defaults(func=_cmd_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
