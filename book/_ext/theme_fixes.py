"""Two small fixes to the HTML theme's scripts, so every page loads with a clean JavaScript console.

- ``sphinx-thebe`` registers its inline configuration script once per build *and* once more through
  the builder, so each page declares ``const THEBE_JS_URL`` twice, a ``SyntaxError``. Identical scripts
  are kept once.
- The theme's head script sets ``<html data-mode="">`` for a first-time visitor (nothing in
  ``localStorage`` yet), which ``pydata-sphinx-theme`` then rejects with a console error before falling
  back to ``auto``. An empty mode is set to the theme default (``auto``) first, which is what the theme
  ends up doing anyway.
"""

from __future__ import annotations

from sphinx.application import Sphinx

DEFAULT_MODE = (
    "if (!document.documentElement.dataset.mode) {"
    " document.documentElement.dataset.mode = document.documentElement.dataset.defaultMode || 'auto'; }"
)


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    kept = []
    for script in scripts:
        # inline scripts are registered with filename None or "" depending on the extension
        attributes = tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items()))
        key = (str(getattr(script, "filename", script) or ""), attributes)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict[str, object]:
    app.add_js_file(None, body=DEFAULT_MODE, priority=0)  # before the theme's own scripts
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
