"""A chapter parameter, declared once: what it may be (:data:`PARAMETERS`, in the vocabulary of
:mod:`alllib.constraints`) and what each run profile gives it (:data:`PROFILES`).

Everything else is derived: the runner's ``-p NAME VALUE`` is checked against :data:`PARAMETERS`,
the command line's ``--profile`` choices are :data:`PROFILE_NAMES`, a chapter hands its
parameters on with ``Chapter("NN_name", **declared(globals()))`` (:func:`declared`), and
:class:`~alllib.book.chapter.Chapter`'s defaults are the quick profile's. The one copy that is not
derived is each notebook's ``parameters`` cell, which papermill needs as plain assignments so that
a reader sees and changes them: ``tests/test_book.py`` holds it to ``PROFILES["quick"]``.
"""
from __future__ import annotations

from alllib.constraints import SEED, Options, Satisfies, check_param, count
from alllib.data import DATASETS
from alllib.errors import ParameterError
from alllib.features import BACKBONES
from alllib.learn.classifiers import CLASSIFIERS, SEARCHES
from alllib.segmentation import SEGMENT_PARAMETERS

__all__ = ["PARAMETERS", "PROFILES", "PROFILE_NAMES", "ParameterError", "check_parameters", "declared",
           "profile_parameters", "comma_list"]

#: Parameter values of the run profiles; a notebook takes those it declares, and a key
#: ``"<notebook>.<parameter>"`` applies to that notebook alone (as ``-p CHAPTER.NAME VALUE``).
#: ``quick`` is every chapter's default (the book CI builds), ``full`` the paper's sizes, and
#: ``tiny`` a few images per chapter: it checks that every chapter runs (the fast test tier),
#: its numbers mean nothing.
PROFILES = {
    # a first look: every chapter within about 90 s on 2 cores with a cold cache; what it leaves out, each
    # chapter says in a sentence, with the command that computes it
    "quick": {"n_synthetic": 160, "target_per_class": 200, "search": "small", "n_repeats": 1, "n_splits": 5,
              "backbones": "available", "cells_per_subject": 20, "cnmc_target_per_class": 300, "sanity_cells": 6,
              "agreement_cells": 8, "epochs": 3, "classifiers": "svm,rf", "n_slides": 8,
              "07_backbones.backbones": "efficientnet_lite0,efficientnet_lite1",
              # the trap shows at half the paper's augmentation size too (3 copies of each cell, not 6)
              "09_leakage.target_per_class": 400,
              # chapter 12's baseline is chapter 9's honest pipeline, with the same augmented copies
              "12_honest_gains.target_per_class": 400},
    "full": {"n_synthetic": 260, "target_per_class": 750, "search": "paper", "n_repeats": 5, "n_splits": 5,
             "backbones": "available", "cells_per_subject": None, "cnmc_target_per_class": 8000, "sanity_cells": 32,
             "agreement_cells": None, "classifiers": "svm,rf,xgboost", "n_slides": None,
             # C-NMC at 8,000 + 8,000: one repeat of the subject folds keeps the chapter within 30 minutes
             "10_cnmc.n_repeats": 1, "epochs": 12,
             # chapter 13 on every cell: fourteen candidates over 5 subject folds, both cohorts and fold_1 alone
             # (one repeat), two of them fine-tuned; the small grid, training sides balanced to 2,000 per class and
             # 4 epochs at most
             "13_cnmc_gains.search": "small", "13_cnmc_gains.cnmc_target_per_class": 2000, "13_cnmc_gains.epochs": 4,
             "13_cnmc_gains.n_repeats": 1},
    "tiny": {"n_synthetic": 24, "target_per_class": 16, "search": "none", "n_repeats": 1, "n_splits": 2,
             "backbones": "available", "cells_per_subject": 4, "cnmc_target_per_class": 16, "epochs": 1,
             "sanity_cells": 2, "rise_masks": 16, "agreement_cells": 2, "classifiers": "svm,rf,xgboost", "n_slides": 4,
             # a cell model for slides needs enough crops to calibrate its probabilities (24 are too few)
             "14_screening.n_synthetic": 60},
}
#: The run profiles' names, in the order of :data:`PROFILES`.
PROFILE_NAMES = tuple(PROFILES)


#: What each parameter a chapter may declare may be (:mod:`alllib.constraints`): the one place a
#: chapter parameter's rule is written, which the runner's ``-p`` values and the notebooks meet.
_COUNT_OR_NONE = [count(), None]
PARAMETERS = {
    "dataset": [Options(("auto",) + DATASETS)],
    "data_dir": [str, None],
    "backbone": [Options(("auto",) + tuple(BACKBONES))],
    "backbones": [str],
    "seed": [SEED],
    "n_synthetic": [count()],
    "target_per_class": [count()],
    "search": [Options(SEARCHES)],
    "n_repeats": [count()],
    "n_splits": [count()],
    "kmeans_k": SEGMENT_PARAMETERS["k"],
    "results_dir": [str, None],
    "cells_per_subject": _COUNT_OR_NONE,
    "cnmc_target_per_class": [count()],
    "epochs": [count()],
    "sanity_cells": [count()],
    "rise_masks": [count()],
    "agreement_cells": _COUNT_OR_NONE,
    "profile": [Options(PROFILE_NAMES)],
    "classifiers": [Satisfies(lambda v: 0 < len(comma_list(v)) == len(set(comma_list(v)) & set(CLASSIFIERS)),
                              f"a comma list of {', '.join(CLASSIFIERS)}", ("svm,alexnet", ""))],
    "n_slides": _COUNT_OR_NONE,
}


def check_parameters(**params) -> dict:
    """Check chapter parameters against :data:`PARAMETERS`; returns them unchanged.

    >>> check_parameters(seed=0, backbone="auto")["seed"]
    0
    >>> check_parameters(seed="0")
    Traceback (most recent call last):
    ...
    alllib.errors.ParameterError: parameter 'seed' must be a seed, an integer from 0 to 2**32 - 1, not '0'
    """
    for name, value in params.items():
        if name not in PARAMETERS:
            raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(PARAMETERS)}")
        check_param(f"parameter {name!r}", value, PARAMETERS[name])
    return params


def declared(namespace: dict) -> dict:
    """The chapter parameters a notebook's ``parameters`` cell declared, found in ``namespace`` (the
    notebook's ``globals()``), so that a chapter hands them on at once and names each one only in
    that cell: ``ch = Chapter("09_leakage", **declared(globals()))``.

    >>> declared({"seed": 3, "dataset": "auto", "ch": None, "_": 1})
    {'dataset': 'auto', 'seed': 3}
    """
    return {name: namespace[name] for name in PARAMETERS if name in namespace}


def comma_list(spec: str) -> list[str]:
    """The names of a comma list, in order, without blanks."""
    return [n.strip() for n in spec.split(",") if n.strip()]


def profile_parameters(profile: str, notebook: str, declared) -> dict:
    """The values ``profile`` gives ``notebook`` for the parameters it ``declared``: the
    profile's general values, then its ``"<notebook>.<parameter>"`` ones.

    >>> profile_parameters("full", "10_cnmc", ["n_repeats", "seed"]), profile_parameters("full", "09_leakage", ["n_repeats"])
    ({'n_repeats': 1}, {'n_repeats': 5})
    """
    values = {"profile": profile, **PROFILES[profile]}  # a chapter may declare which profile runs it
    params = {k: v for k, v in values.items() if k in declared}
    params.update({k.split(".", 1)[1]: v for k, v in values.items()
                   if k.startswith(f"{notebook}.") and k.split(".", 1)[1] in declared})
    return params
