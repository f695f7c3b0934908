"""Links between nightshift's pages in the store, relative so they work wherever the store is served.

A page of a report area lives twice: in its partition's folder (`…/dt=D/page.html`) and in its revision
(`…/dt=D/rev=R/page.html`), byte for byte the same. Each link holds both addresses; the page's link script
(`navigation.html.j2`) switches to the revision's when the page was opened from a `rev=` folder.
"""

from __future__ import annotations

import posixpath
from typing import Any


def page_link(page_key: str, target_key: str, label: str, title: str | None = None) -> dict[str, Any]:
    """A link from the page stored at `page_key` (its partition's copy) to the object at `target_key`."""
    folder = posixpath.dirname(page_key)
    return {
        "href": posixpath.relpath(target_key, folder),
        "revision_href": posixpath.relpath(target_key, f"{folder}/rev=R"),
        "label": label,
        "title": title,
    }


def drift_index_key(model: str) -> str:
    return f"reports/drift/{model}/index.html"


def index_link(page_key: str, model: Any) -> dict[str, Any]:
    """The link back to the model's drift index."""
    return page_link(page_key, drift_index_key(str(model)), "← drift index", f"every night of {model}")
