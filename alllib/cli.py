"""The command line: ``python -m alllib <command>``.

``datasets``  describe the datasets found in the data folder.
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m alllib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alllib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("datasets", help="describe the datasets found in the data folder")
    p.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else ./data)")
    p.add_argument("--synthetic-n", type=int, default=260, help="size of the synthetic dataset")
    p.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
