"""How the book shows a table or a note: percentages for reading, boxes that render in JupyterLab and
the book alike, and the names it gives things in prose."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pandas as pd

__all__ = ["Box", "CLASSIFIER_NAMES", "percent_table", "show_table", "show_text", "percent", "full_profile_note"]


_BOX_COLOURS = {"note": ("#e7f2fa", "#6ab0de"), "warning": ("#fff4e5", "#f0b37e"), "important": ("#e8f5e9", "#5cb85c")}


@dataclass
class Box:
    """A note, warning or banner that renders as a box both in JupyterLab and in the book.

    ``body`` is HTML (use :func:`html.escape` for text from elsewhere). The box is an HTML
    ``div`` with the ``admonition`` classes that the book's theme styles, and inline styles for
    JupyterLab, which does not parse the book's MyST directives in outputs.

    >>> "admonition note" in Box("C-NMC is <b>absent</b>.", title="Note")._repr_html_()
    True
    >>> print(repr(Box("C-NMC is <b>absent</b>.", title="Note")))
    Note: C-NMC is absent.
    """

    body: str
    kind: str = "note"
    title: str | None = None

    def __post_init__(self):
        if self.kind not in _BOX_COLOURS:
            raise ValueError(f"kind must be one of {', '.join(_BOX_COLOURS)}, not {self.kind!r}")

    def _repr_html_(self) -> str:
        bg, edge = _BOX_COLOURS[self.kind]
        title = (f'<p class="admonition-title" style="font-weight:bold;margin:0 0 0.3em 0">{html.escape(self.title)}</p>'
                 if self.title else "")
        return (f'<div class="admonition {self.kind}" style="background:{bg};border-left:4px solid {edge};'
                f'padding:0.5em 0.9em;margin:0.6em 0;white-space:normal">{title}{self.body}</div>')

    def __repr__(self) -> str:
        text = html.unescape(re.sub(r"<[^>]+>", "", self.body))
        return f"{self.title}: {text}" if self.title else text


#: How the book names each classifier in prose.
CLASSIFIER_NAMES = {"svm": "the SVM", "rf": "the random forest", "xgboost": "XGBoost"}


def percent_table(frame: pd.DataFrame, *, fractions: bool = True, decimals: int = 1, exclude=()):
    """A table for reading: fractions shown as percentages with ``decimals`` decimals, counts as
    integers, empty cells for missing values (never ``NaN``), column names wrapped so the table
    fits the page. Returns a pandas ``Styler`` (rendered as HTML in JupyterLab and the book).

    ``fractions=False`` for tables already in percent. Columns named in ``exclude`` are shown as
    they are; p-values (columns named ``p``, ``p (...)`` or ``... p``) with two significant digits;
    rank correlations (``rho``) with two decimals; columns of integers, or named ``n_...`` or for
    leaks, counts, cells, subjects, images or groups, as whole numbers; columns named for points,
    with a sign.
    """
    t = frame.copy()
    fmt = {}
    for col in t.columns:
        s = t[col]
        name = str(col).lower()
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or col in exclude:
            continue
        if name == "p" or name.startswith("p (") or " p (" in name or name.endswith(" p"):
            fmt[col] = lambda v: "" if pd.isna(v) else f"{v:.2g}"
        elif "rho" in name:
            fmt[col] = lambda v: "" if pd.isna(v) else f"{v:.2f}"
        elif pd.api.types.is_integer_dtype(s) or name.startswith("n_") or any(
                w in name for w in ("leak", "count", "cells", "subjects", "images", "groups")):
            fmt[col] = lambda v: "" if pd.isna(v) else f"{int(round(v)):,}"
        elif "points" in name:
            fmt[col] = lambda v, d=decimals: "" if pd.isna(v) else f"{v:+.{d}f}"
        else:
            scale = 100 if fractions else 1
            fmt[col] = lambda v, d=decimals, k=scale: "" if pd.isna(v) else f"{k * v:.{d}f} %"
    styler = t.style.format(fmt, na_rep="")
    return styler.set_table_styles([{"selector": "th.col_heading", "props": [("white-space", "normal"),
                                                                              ("max-width", "9em")]},
                                    {"selector": "th.row_heading", "props": [("white-space", "nowrap")]}])


def show_table(table: pd.DataFrame, sentences: str = "", **percent_kw) -> None:
    """Show ``table`` for reading (:func:`percent_table`, given ``percent_kw``) and under it the
    ``sentences`` that say what it holds (Markdown), in the notebook that runs the chapter."""
    from IPython.display import display

    display(percent_table(table, **percent_kw))
    show_text(sentences)


def show_text(text: str) -> None:
    """Show ``text`` (Markdown) in the notebook that runs the chapter; nothing where it is empty (a
    note that does not apply to this run, such as what the full profile adds, in the full profile)."""
    from IPython.display import Markdown, display

    if text:
        display(Markdown(text))


def percent(v: float) -> str:
    """A fraction as a percentage with one decimal: ``percent(0.9876)`` is ``'98.8 %'``."""
    return f"{100 * v:.1f} %"


def full_profile_note(profile: str, chapter: str, adds: list[str]) -> str:
    """One sentence for a chapter run below the full profile: what the full profile adds (``adds``,
    rows or figures this run did not compute) and the command that computes them; empty in the
    full profile or where it adds nothing.

    >>> full_profile_note("quick", "13_cnmc_gains", ["fine-tuning"])[:65]
    'This quick run leaves out fine-tuning; the full profile adds them'
    """
    if profile == "full" or not adds:
        return ""
    return (f"This {profile} run leaves out {', '.join(adds)}; the full profile adds them: "
            f"`python -m alllib book --profile full --only {chapter}`.")
