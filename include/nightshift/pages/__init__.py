"""HTML pages from Jinja2 templates: one layout, one stylesheet, autoescape on, undefined variables fail loudly."""

from __future__ import annotations

import functools
import html
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

STYLESHEET = "style.css"


def render(template_name: str, **context: Any) -> str:
    """Render one template of `templates/` with `context`."""
    return _environment().get_template(template_name).render(**context)


def stylesheet() -> str:
    """The one stylesheet every page embeds."""
    return resources.files(__name__).joinpath("templates", STYLESHEET).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment, built on first use so importing this package stays light."""
    import jinja2
    from markupsafe import Markup

    def escaped(value: Any) -> Any:
        """Escape as `html.escape(quote=True)` does (`&quot;`, `&#x27;`); None shows as nothing."""
        if hasattr(value, "__html__"):
            return value
        return Markup(html.escape("" if value is None else str(value), quote=True))

    return jinja2.Environment(
        loader=jinja2.PackageLoader("nightshift.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=escaped,
    )
