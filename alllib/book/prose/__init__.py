"""How the book shows a run's results: readable tables and boxes (:mod:`~alllib.book.prose.display`),
and sentences written from the numbers, about protocols (:mod:`~alllib.book.prose.protocols`),
candidates (:mod:`~alllib.book.prose.gains`), attribution maps
(:mod:`~alllib.book.prose.attribution`) and slide screens (:mod:`~alllib.book.prose.screening`). Every
public name of the five is importable from here.

Every sentence about this project's own results is produced here, from the run's tables, so
that the prose follows the numbers: it branches on the sign of a difference and on whether a
value lies inside an interval, and never states a figure the run did not compute.
"""
from alllib.book.prose.attribution import *  # noqa: F401,F403
from alllib.book.prose.attribution import __all__ as _attribution
from alllib.book.prose.display import *  # noqa: F401,F403
from alllib.book.prose.display import __all__ as _display
from alllib.book.prose.gains import *  # noqa: F401,F403
from alllib.book.prose.gains import __all__ as _gains
from alllib.book.prose.protocols import *  # noqa: F401,F403
from alllib.book.prose.protocols import __all__ as _protocols
from alllib.book.prose.screening import *  # noqa: F401,F403
from alllib.book.prose.screening import __all__ as _screening

__all__ = [*_display, *_protocols, *_gains, *_attribution, *_screening]
