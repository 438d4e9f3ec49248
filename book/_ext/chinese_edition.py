"""The Chinese edition's page around the text: the theme's words in Chinese, a note on the launch buttons,
and a font that shows the Chinese characters on any machine.

``book/editions.py`` adds this extension to the Chinese edition's configuration only; the English
edition never loads it.

- **The themes' words come from the book's own catalogs first.** Sphinx looks up its ``sphinx``
  catalog (which the pydata-sphinx-theme's templates use too) in ``locale_dirs`` before its own, so
  ``locales/zh_CN/LC_MESSAGES/sphinx.po`` completes and corrects it by itself. The sphinx-book-theme
  registers a ``booktheme`` catalog of its own, whose zh_CN translation lacks strings and has
  Taiwanese forms ("列印成 PDF"); the book's ``booktheme.po`` is put in front of it here, the theme's
  kept as the fallback.
- **Tooltips and labels the templates write in English** (``title="Toggle primary sidebar"``,
  ``aria-label="Main"``, the search field's placeholder, myst-nb's ``aria-label="Toggle hidden
  content"``): ``templates/layout.html`` passes the page through ``translate_attributes``, which
  translates every ``title``, ``aria-label``, ``data-bs-title``, ``placeholder`` and ``alt`` whose
  whole value is a message of the ``sphinx`` catalog.
- **The launch buttons open the English notebook**: their tooltips say so (``booktheme.po``), and a
  line at the top of every page with launch buttons says it too (``edition_notebook_note``).
- **A served Chinese font**: ``static/chinese-font.css`` declares ``static/noto-sans-sc-book.woff2``,
  a subset of Noto Sans CJK SC with every character the edition can show (``book/cjk_font.py`` makes
  it), after the system's Latin fonts and before the generic ``sans-serif``: a reader without a
  Chinese font sees the characters, not empty boxes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sphinx import locale
from sphinx.application import Sphinx
from sphinx.config import Config

HERE = Path(__file__).resolve().parent
THEME_CATALOGS = ("booktheme",)  # catalogs a theme registers itself, which the book's come before
ATTRIBUTE = re.compile(r'\b(title|aria-label|data-bs-title|placeholder|alt)="([^"<>]*)"')
FONT_CSS = "chinese-font.css"


def translate_attributes(fragment: str) -> str:
    """``fragment`` (HTML) with every UI attribute whose whole value is a ``sphinx`` message translated."""
    translate = locale.get_translation("sphinx")

    def replace(match: re.Match) -> str:
        english = html.unescape(match.group(2))
        translated = translate(english) if english.strip() else english
        if translated == english:
            return match.group(0)
        return f'{match.group(1)}="{html.escape(translated, quote=True)}"'

    return ATTRIBUTE.sub(replace, str(fragment))


def _add_paths(app: Sphinx, config: Config) -> None:
    config.templates_path.insert(0, str(HERE / "templates"))
    config.html_static_path.append(str(HERE / "static"))


def _book_catalogs_first(app: Sphinx) -> None:
    """Put the book's catalog of each theme in front of the theme's own (kept as the fallback)."""
    dirs = [str(Path(app.srcdir, d)) for d in app.config.locale_dirs]
    for catalog in THEME_CATALOGS:
        theirs = locale.translators.pop(("general", catalog), None)
        ours, found = locale.init(dirs, app.config.language, catalog)
        if not found:
            if theirs is not None:
                locale.translators["general", catalog] = theirs
            continue
        if theirs is not None:
            ours.add_fallback(theirs)
    templates = getattr(app.builder, "templates", None)
    if templates is not None and hasattr(templates, "environment"):
        templates.environment.filters["translate_attributes"] = translate_attributes


def _notebook_note(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    note = app.config.edition_notebook_note
    buttons = context.get("header_buttons") or []
    if not note or "body" not in context or not any(b.get("label") == "launch-buttons" for b in buttons):
        return
    context["body"] = f'<p class="edition-notebook-note">{html.escape(note)}</p>\n' + context["body"]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_config_value("edition_notebook_note", "", "html", types=[str])
    app.connect("config-inited", _add_paths)
    app.connect("builder-inited", _book_catalogs_first)
    app.connect("html-page-context", _notebook_note, priority=600)  # after the theme adds its launch buttons
    app.add_css_file(FONT_CSS)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
