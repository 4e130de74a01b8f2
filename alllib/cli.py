"""The command line: ``python -m alllib <command>``.

``datasets``  describe the datasets found in the data folder.
``train``     train an image classifier on a dataset and save it.
``predict``   label images with a saved model.
``screen``    find, label and count the white cells of whole blood-smear slides, and call each slide.
``book``      run every chapter with papermill and build the HTML book.
``lab``       write the student and instructor editions of the chapters for a course lab.

The commands on model files (``train``, ``predict``, ``screen``) are :mod:`alllib.model_commands`.
"""
from __future__ import annotations

import argparse
import os
import sys

from alllib import __version__
from alllib.constraints import SEED, argparse_type, count
from alllib.errors import AlllibError, UsageError, printable
from alllib.model_commands import predict_command, screen_command, train_command


def _cmd_datasets(args: argparse.Namespace) -> int:
    import warnings

    from alllib.data import DatasetError, ImageReadError, UnreadableImageWarning, load_dataset
    from alllib.paths import data_dir

    print(f"data folder: {printable(data_dir(args.data).resolve())}")
    for name in ("all_idb2", "cnmc"):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnreadableImageWarning)
                ds = load_dataset(name, args.data, verbose=False,
                                  **({"skip_unreadable": True} if name == "all_idb2" else {}))
        except (DatasetError, ImageReadError) as err:
            print(f"\n{name}: not available ({printable(err)})")
            continue
        bad = [str(w.message) for w in caught if issubclass(w.category, UnreadableImageWarning)]
        if name == "cnmc":  # its loader reads names only: decode each image once here
            ok, errors = _readable(ds)
            ds, bad = ds.subset(ok), bad + errors
        print(f"\n{name}: {len(ds)} images in {ds.table['group'].nunique()} groups, from {printable(ds.source)}")
        if bad:
            print(f"{len(bad)} unreadable file(s), not counted:")
            print("\n".join(f"  {printable(m)}" for m in bad))
        print(ds.summary().to_string())
    _describe_slides(args.data)
    ds = load_dataset("synthetic", verbose=False, n=args.synthetic_n)
    print(f"\nsynthetic: {len(ds)} images made on demand ({ds.source})")
    return 0


def _describe_slides(data) -> None:
    """``datasets``: the ALL-IDB1 slides (what ``screen`` and chapter 14 screen), where present."""
    from alllib.data import DatasetError
    from alllib.data.all_idb1 import load_all_idb1

    try:
        slides = load_all_idb1(data)
    except DatasetError as err:
        print(f"\nall_idb1 (whole slides): not available ({printable(err)})")
        return
    t = slides.table
    print(f"\nall_idb1 (whole slides): {len(t)} slides ({int(t['label'].sum())} of ALL patients, "
          f"{int((t['label'] == 0).sum())} of healthy people; {t['group'].nunique()} distinct), "
          f"{int(t['marked'].sum())} marked blasts, from {printable(slides.source)}")
    print(t.groupby(["acquisition", "label"]).size().rename("slides").to_string())


def _readable(ds) -> tuple[list[int], list[str]]:
    """The positions of ``ds``'s images that decode, and a message for each one that does not."""
    from tqdm import tqdm

    from alllib.data import ImageReadError

    ok, errors = [], []
    for i in tqdm(range(len(ds)), desc=f"decoding the {ds.name} images", unit="img", leave=False):
        try:
            ds.image(i)
            ok.append(i)
        except ImageReadError as err:
            errors.append(f"left out: {err}")
    return ok, errors


def _cmd_book(args: argparse.Namespace) -> int:
    from alllib.book.runner import run_book

    manifest = run_book(args.profile, data=args.data, overrides=args.param or [], out=args.out,
                        only=args.only, html=not args.no_html, repository=args.repository, jobs=args.jobs)
    print(f"{len(manifest['notebooks'])} notebooks in {manifest['total_seconds']:.0f} s; "
          f"manifest: {args.out}/manifest.json" + (f"; book: {manifest['html']}" if "html" in manifest else ""))
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from alllib.book.lab import write_lab
    from alllib.book.runner import notebooks_in_toc, repo_root

    notebooks = notebooks_in_toc(repo_root())
    try:
        folders = write_lab(args.out, notebooks)
    except OSError as err:
        raise UsageError(f"--out {args.out}: cannot write the lab editions there ({err.strerror or err})") from None
    print(f"student edition (solutions removed, checks kept): {folders['student']}\n"
          f"instructor edition (the chapters as they are): {folders['instructor']}\n"
          f"{len(notebooks)} notebooks each; open them with: jupyter lab {folders['student']}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line and where to find the usage (not the whole
    usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from alllib.book.parameters import PARAMETERS, PROFILE_NAMES
    from alllib.learn.classifiers import CLASSIFIERS, SEARCHES

    parser = _Parser(prog="python -m alllib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alllib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("datasets", help="describe the datasets found in the data folder")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("--synthetic-n", type=argparse_type(count(2)), default=260, help="size of the synthetic dataset")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("train", help="train an image classifier and save it")
    p.add_argument("--dataset", default="auto", choices=PARAMETERS["dataset"][0].values,
                   help="all_idb2, cnmc, synthetic or auto (default)")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("--backbone", default="auto", choices=PARAMETERS["backbone"][0].values,
                   help="feature extractor (default: auto, DenseNet-201 where its weights are here)")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a weights file")
    p.add_argument("--classifier", default="svm", choices=CLASSIFIERS)
    p.add_argument("--segmentation", default=None, choices=["kmeans", "otsu", "none"],
                   help="default: none for cnmc (its cells come segmented), kmeans otherwise")
    p.add_argument("--k", type=argparse_type(PARAMETERS["kmeans_k"][0], "k"), default=3, help="K-means clusters (default 3)")
    p.add_argument("--augment-to", type=argparse_type(count(1)), default=None, help="balance each class to this many images")
    p.add_argument("--search", default="paper", choices=SEARCHES, help="SVM grid")
    p.add_argument("--neighbours", type=argparse_type(count(0)), default=None, metavar="K",
                   help="predict corrects each cell by its K most similar cells of the same person in the batch, "
                        "and the report measures it so (default: the dataset's, chosen and recorded by "
                        "benchmarks/cnmc_specificity.py for cnmc; 0 otherwise)")
    p.add_argument("--synthetic-n", type=argparse_type(count(2)), default=260,
                   help="size of the synthetic dataset, when it is used")
    p.add_argument("--seed", type=argparse_type(SEED, "seed"), default=0, help="0 to 2**32 - 1 (default 0)")
    p.add_argument("--threshold", default="balanced", choices=["balanced", "default"],
                   help="decision threshold: balanced (default), the one that maximises balanced accuracy on grouped "
                        "cross-validated decisions; default, the classifier's own p(blast) >= 0.5")
    p.add_argument("--out", default="model.alllib", help="model file to write")
    p.set_defaults(func=train_command)

    p = sub.add_parser("predict", help="label images with a saved model",
                       description="Label images with a saved model. Exit status: 0 every image labelled, 1 some "
                                   "could not be read or show no visible cell (each named on stderr and in the CSV), "
                                   "2 the model cannot be used.")
    p.add_argument("model", help="a model file written by 'train'")
    p.add_argument("images", nargs="*", help="image files")
    p.add_argument("--by-subject", action="store_true",
                   help="also one call per person: cells grouped by the subject in their C-NMC file names "
                        "(UID_<subject>_...), or by --subjects; ALL, normal or uncertain, from the share of cells "
                        "called blasts and its 95 %% interval")
    p.add_argument("--subjects", metavar="CSV", help="a CSV with columns image and subject (UTF-8): who is who, for "
                   "--by-subject and the neighbourhood correction")
    p.add_argument("--neighbours", type=argparse_type(count(0)), default=None, metavar="K",
                   help="mix each cell's probability half and half with its K most similar cells of the same person "
                        "in this batch (Pan et al. 2019's neighbourhood correction; people from C-NMC names or "
                        "--subjects, cells of no known person are left as they are) "
                        "(default: the model's own setting, shown by --about; 0: none)")
    p.add_argument("--about", action="store_true",
                   help="say what the model is and what grouped cross-validation found for a new patient (with "
                        "images: on stderr, before their labels)")
    p.add_argument("--csv", action="store_true",
                   help="print CSV, one row per input: image, status (ok / warning / error), label, class, "
                        "probability_blast, message")
    p.set_defaults(func=predict_command)

    p = sub.add_parser("screen", help="screen whole blood-smear slides: find, label and count their white cells",
                       description="Find every white cell on each slide, cut it as ALL-IDB2 was cut (257 x 257), "
                                   "label it with a model trained on ALL-IDB2 crops, and call the slide ALL, normal or "
                                   "uncertain by a rule derived from the model's slide-grouped cross-validated errors "
                                   "(printed first). Exit status: 0 every slide screened, 1 some could not be read, are "
                                   "crops rather than slides, or are flagged (each named on stderr and in the CSV), "
                                   "2 the model cannot be used.")
    p.add_argument("model", help="a model file written by 'train --dataset all_idb2'")
    p.add_argument("slides", nargs="+", help="slide image files (such as ALL-IDB1's ImNNN_L.jpg)")
    p.add_argument("--csv", action="store_true",
                   help="print CSV, one row per slide: slide, status (ok / warning / error), cells, blasts, "
                        "blast_share, call, message")
    p.add_argument("--cells-csv", metavar="FILE",
                   help="also write one row per cell: slide, x, y (in the slide's pixels), label, probability_blast")
    p.add_argument("--overlays", metavar="DIR",
                   help="also write a PNG per slide with every cell circled: orange where called a blast, blue "
                        "otherwise")
    p.set_defaults(func=screen_command)

    p = sub.add_parser("book", help="run every chapter with papermill and build the HTML book")
    p.add_argument("--profile", default="quick", choices=PROFILE_NAMES,
                   help="quick (default): small counts; full: the paper's sizes; tiny: a few images per chapter, "
                        "to check that every chapter runs (its numbers mean nothing)")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a parameter in every notebook that has it, or NOTEBOOK.NAME in one "
                        "(e.g. -p seed 1 -p 09_leakage.n_repeats 5); values are read as YAML")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (by file stem)")
    p.add_argument("--out", default="_build", help="build folder (default _build)")
    p.add_argument("--no-html", action="store_true", help="execute the notebooks but do not build the HTML")
    p.add_argument("--jobs", type=argparse_type(count(1)), default=1,
                   help="chapters executed side by side (default 1: one after the other, each timed on its own; "
                        "the summary always runs last). Chapters share features through the cache: with a cold "
                        "cache, side by side they compute them twice, so this pays on small or warm runs only")
    p.add_argument("--repository", metavar="URL",
                   help="the book's public repository (https://github.com/OWNER/NAME): adds repository, issues, "
                        "Binder and Colab buttons; without it the book has none")
    p.set_defaults(func=_cmd_book)

    p = sub.add_parser("lab", help="write the student and instructor editions of the chapters")
    p.add_argument("--out", default="lab", help="folder for student/ and instructor/ (default: lab)")
    p.set_defaults(func=_cmd_lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    from alllib.data import max_pixels
    from alllib.learn.classifiers import n_jobs

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        try:  # the settings read from the environment, checked before any work
            n_jobs()
            max_pixels()
        except ValueError as err:
            raise UsageError(str(err)) from None
        return args.func(args)
    except AlllibError as err:  # the one place where alllib's errors become a line and an exit status
        print(f"error: {printable(err)}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
