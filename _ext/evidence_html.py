"""Sphinx tweaks for the evidence book's HTML (loaded through ``_config.yml``).

- Jupyter Book 1 always loads sphinx-thebe, which (with Sphinx 7) declares its inline
  configuration twice on every page -- a console error in browsers -- and names a CDN
  URL. The book has no live code, so its Thebe scripts are dropped.
- sphinx-book-theme 1.3 does not set ``data-mode`` on ``<html>``, so the pydata theme
  logs "invalid theme mode" on every page; a default (``auto``) is set before it runs.
"""

from __future__ import annotations

from typing import Any

_DEFAULT_MODE = (
    "if (!document.documentElement.dataset.mode) "
    "{ document.documentElement.dataset.mode = 'auto'; }"
)


def _is_thebe(script: Any) -> bool:
    filename = getattr(script, "filename", None) or ""
    body = getattr(script, "attributes", {}).get("body", "") or ""
    return "thebe" in filename or "THEBE_JS_URL" in body


def _page_context(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                  doctree: Any) -> None:
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app: Any) -> dict[str, Any]:
    app.add_js_file(None, body=_DEFAULT_MODE, priority=1)
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
