"""Local Sphinx extension of the book (``sphinx: local_extensions`` in _config.yml).

- The book's stylesheet, ``_static/tsfmicro.css``, and ``_static/tsfmicro.js`` (a table that cannot
  fit the page with whole words may break inside them).
- No thebe scripts: the book has no live-code button, and sphinx-thebe (always loaded by
  jupyter-book) declares ``const THEBE_JS_URL`` in an inline script that reaches each page
  twice, so every page logged "Identifier 'THEBE_JS_URL' has already been declared".
- The theme's colour mode defaults to "auto" (follow the reader's system): without a default,
  a reader's first page logged "Got invalid theme mode: . Resetting to auto.".
"""
from __future__ import annotations


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    context["script_files"] = [
        script for script in scripts
        if "thebe" not in str(getattr(script, "filename", script) or "").lower()
        and "THEBE_JS_URL" not in str(getattr(script, "attributes", {}).get("body", ""))]


def _default_mode(app, pagename, templatename, context, doctree):
    # the theme's layout reads `default_mode` from the page context (pydata-sphinx-theme puts
    # it there from its theme options, which sphinx-book-theme does not accept)
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app):
    app.add_css_file("tsfmicro.css")
    app.add_js_file("tsfmicro.js")
    app.connect("html-page-context", _default_mode, priority=900)  # after the theme's own
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
