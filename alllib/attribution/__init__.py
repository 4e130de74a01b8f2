"""What the network looks at, and whether a map of it can be trusted: the maps
(:mod:`~alllib.attribution.maps`), their sanity checks (:mod:`~alllib.attribution.checks`) and the
study that runs both on every image of a dataset with grouped folds
(:mod:`~alllib.attribution.study`). Every public name of the three is importable from here.
"""
from alllib.attribution.checks import *  # noqa: F401,F403
from alllib.attribution.checks import __all__ as _checks
from alllib.attribution.maps import *  # noqa: F401,F403
from alllib.attribution.maps import __all__ as _maps
from alllib.attribution.study import *  # noqa: F401,F403
from alllib.attribution.study import __all__ as _study

__all__ = [*_maps, *_checks, *_study]
