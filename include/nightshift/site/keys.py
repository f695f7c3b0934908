"""Which store keys the site serves: objects of the report areas, of a model that exists, never anything outside."""

from __future__ import annotations

from collections.abc import Collection

from nightshift.stores.objects import REPORT_AREAS

REPORT_KINDS = ("drift", "performance")
"""The folders under `reports/`: `reports/<kind>/<model>/…`."""
FORBIDDEN = {"\\": "a backslash", "\x00": "a NUL byte", "%": "a percent sign (an encoded character)"}


class RefusedKey(ValueError):
    """A key the site does not serve; `status` is the HTTP status to answer with (400 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def model_of(key: str) -> str | None:
    """The model a report-area key belongs to (`reports/<kind>/<model>/…` or `<area>/<model>/…`), else None."""
    parts = key.split("/")
    if parts[0] == "reports":
        return parts[2] if len(parts) > 3 and parts[1] in REPORT_KINDS else None
    return parts[1] if len(parts) > 2 and parts[0] in REPORT_AREAS else None


def checked_key(key: str, models: Collection[str]) -> tuple[str, str]:
    """The key and its model, when the site may serve it; RefusedKey (400 bad form, 404 elsewhere) otherwise."""
    areas = ", ".join(f"{area}/" for area in REPORT_AREAS)
    for character, name in FORBIDDEN.items():
        if character in key:
            raise RefusedKey(400, f"store key {key!r} holds {name}: keys are plain paths under {areas}")
    if key.startswith("/") or not key:
        raise RefusedKey(400, f"store key {key!r} is absolute or empty: give a path under {areas}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise RefusedKey(400, f"store key {key!r} has an empty, '.' or '..' segment: keys never leave their folder")
    if parts[0] not in REPORT_AREAS:
        raise RefusedKey(404, f"store key {key!r} is outside the report areas: only {areas} are served")
    if any(part.startswith(".") for part in parts):
        raise RefusedKey(404, f"store key {key!r} names a hidden file (a write in progress): not served")
    model = model_of(key)
    if model is None:
        kinds = ", ".join(f"reports/{kind}/<model>/" for kind in REPORT_KINDS)
        raise RefusedKey(404, f"store key {key!r} names no model's object: expected {kinds} or <area>/<model>/…")
    if model not in models:
        known = ", ".join(sorted(models)) or "none"
        raise RefusedKey(404, f"store key {key!r}: no model {model!r} (models: {known})")
    return key, model


def checked_model(model: str, models: Collection[str]) -> str:
    """The model's name when it is configured; RefusedKey 404 naming the models otherwise."""
    if model not in models:
        known = ", ".join(sorted(models)) or "none"
        raise RefusedKey(404, f"no model {model!r}: the configured models are {known}")
    return model
