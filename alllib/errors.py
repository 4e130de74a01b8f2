"""One base for the errors alllib raises on purpose, each with a message meant for a person and
the exit status the command line gives it.

Every such error derives from :class:`AlllibError` (and from the built-in type it always was, so
``except ValueError`` still catches a bad image): the command line catches the base once and
prints ``error: <message>``. Exit status 2 means the command cannot work with what it was given
(a parameter, a file, a dataset, the weights); 1 means the work itself failed (a chapter of the
book); an unexpected exception is a bug and keeps its traceback.

>>> class Bad(AlllibError, ValueError):
...     pass
>>> isinstance(Bad("x"), ValueError), Bad("x").exit_code
(True, 2)
"""
from __future__ import annotations

__all__ = ["AlllibError", "DatasetError", "ParameterError", "UsageError", "CommandFailed", "printable", "file_kind"]


class AlllibError(Exception):
    """Base of the errors alllib raises on purpose; ``exit_code`` is the command line's status."""

    exit_code = 2


def printable(text: object, *, controls: bool = True) -> str:
    """``text`` safe to print on any terminal, in any encoding: bytes that are not UTF-8 (a file
    name's, kept by Python as surrogates) and control characters (a newline or a tab in a file
    name, an escape sequence) shown as backslash escapes, so that no name can forge a line of
    output or stop the program from printing. ``controls=False`` leaves control characters as
    they are (for CSV, which quotes them).

    >>> printable("a\\nb\\tc"), printable("x\\udcff.png")
    ('a\\\\nb\\\\tc', 'x\\\\xff.png')
    """
    s = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if not controls:
        return s
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in s)


class UsageError(AlllibError, ValueError):
    """A command-line value that cannot work, found before any work is done (exit status 2)."""


class ParameterError(AlllibError, ValueError, TypeError):
    """A parameter of the wrong type or value: an estimator's, a chapter's, the runner's (exit
    status 2). It is a ``ValueError`` and a ``TypeError``, as scikit-learn's
    ``InvalidParameterError`` is, so either ``except`` catches it. What each parameter may be is
    declared in :mod:`alllib.constraints`."""


class CommandFailed(AlllibError, RuntimeError):
    """The work itself failed where it could not be foreseen, a full disk say (exit status 1)."""

    exit_code = 1


class DatasetError(AlllibError, ValueError):
    """A dataset folder that is missing, empty or laid out unlike the loader expects."""


def file_kind(path) -> str:
    """What ``path`` is, in words, for a message: ``"a regular file"``, ``"a directory"``, ``"a FIFO
    (named pipe)"``, ``"a character device"``, ``"a block device"``, ``"a socket"``, ``"a symbolic
    link loop"``, ``"a broken symbolic link"`` or ``"missing"`` (links followed otherwise).

    >>> file_kind("/dev/null"), file_kind("/no/such/file")
    ('a character device', 'missing')
    """
    import errno
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop"
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    for test, word in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"
