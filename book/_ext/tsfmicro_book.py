"""Local Sphinx extension of the book (``sphinx: local_extensions`` in _config.yml).

- The book's stylesheet, ``_static/tsfmicro.css``.
- No thebe scripts: the book has no live-code button, and sphinx-thebe (always loaded by
  jupyter-book) declares ``const THEBE_JS_URL`` in an inline script that reaches each page
  twice, so every page logged "Identifier 'THEBE_JS_URL' has already been declared".
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


def setup(app):
    app.add_css_file("tsfmicro.css")
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
