"""Links to share a model's reports with someone who has no store credentials (what `nightshift report-link` prints).

On a store whose objects need signed links (S3) the index's relative links would be refused (403), so sharing the
index writes a copy of it whose every link is presigned with the copy's own expiry, at
`reports/drift/<model>/shared/<expiry YYYYMMDDTHHMMSSZ>-<token>/index.html`, and returns the presigned link to that
copy. Copies whose links expired are removed whenever a new one is written. A local store's pages open as they are:
the plain links to the index and the night's files are returned and no copy is written.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from nightshift.stages.drift.index import night_summaries, report_prefix
from nightshift.stores.objects import (
    MARKER,
    ObjectStore,
    check_expiry,
    is_complete,
    link_maker,
    presigned_url,
    signs_links,
)

SHARED_DIR = "shared"
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SharedLink:
    label: str
    url: str
    key: str


class NothingToShare(LookupError):
    """The index or the night asked for does not exist (yet); the message says why and where it was looked for."""


def shared_prefix(model: str) -> str:
    return f"{report_prefix(model)}/{SHARED_DIR}"


def share_index(store: ObjectStore, model: str, expires_seconds: int, now: dt.datetime) -> SharedLink:
    """The link to the model's drift index from which every page it links opens for `expires_seconds` from `now`.

    On S3: a copy of the index with every link presigned (same expiry), expired copies pruned first. Locally: the
    index itself.
    """
    check_expiry(expires_seconds)
    index = f"{report_prefix(model)}/index.html"
    if not store.exists(index):
        raise NothingToShare(
            f"{store.url_for(index)} does not exist yet; the nightly DAG's drift task writes it after the first night "
            f"of {model!r} is scored (store: {store.uri})"
        )
    if not signs_links(store):
        return SharedLink("index", presigned_url(store, index, expires_seconds), index)
    from nightshift.stages.drift.measure import render_index

    prune_shared(store, model, now)
    expiry = now.astimezone(dt.UTC) + dt.timedelta(seconds=expires_seconds)
    key = f"{shared_prefix(model)}/{expiry.strftime(STAMP)}-{secrets.token_hex(4)}/index.html"
    notice = (
        f"A shared copy of the index: its links open without store credentials until {expiry:%Y-%m-%d %H:%M} UTC "
        "(then ask for a new one with nightshift report-link)."
    )
    page = render_index(night_summaries(store, model), model, href=link_maker(store, expires_seconds), notice=notice)
    store.write_bytes(key, page.encode())
    return SharedLink("index", presigned_url(store, key, expires_seconds), key)


def prune_shared(store: ObjectStore, model: str, now: dt.datetime) -> list[str]:
    """Remove the shared copies whose links expired by `now`; return their folders. Unknown names are left alone."""
    base = shared_prefix(model)
    removed = []
    for folder in sorted({key[len(base) + 1 :].split("/", 1)[0] for key in store.list(base)}):
        try:
            expiry = dt.datetime.strptime(folder.split("-", 1)[0], STAMP).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if expiry <= now.astimezone(dt.UTC):
            store.delete_prefix(f"{base}/{folder}")
            removed.append(f"{base}/{folder}")
    return removed


def night_links(store: ObjectStore, model: str, day: dt.date, expires_seconds: int) -> list[SharedLink]:
    """Labelled links to one night's files that exist: its drift report, JSON and summary, its validation page and
    JSON, its quarantined rows (of the drop and of the label drop) and its performance page."""
    check_expiry(expires_seconds)
    night = f"{report_prefix(model)}/dt={day.isoformat()}"
    report = f"{night}/report.html"
    if not (is_complete(store, night) and store.exists(report)):
        raise NothingToShare(
            f"no drift report for {model!r} on {day} at {store.url_for(report)}; that night was not measured yet, is "
            "still being written, or had no champion to compare with"
        )
    stamp = f"dt={day.isoformat()}"
    wanted = [
        ("drift report", report),
        ("drift report JSON", f"{night}/report.json"),
        ("drift summary", f"{night}/summary.json"),
        ("validation page", f"validation/{model}/{stamp}/result.html"),
        ("validation JSON", f"validation/{model}/{stamp}/result.json"),
        ("rejected rows", f"quarantine/{model}/{stamp}/rejected.csv"),
        ("rejected label rows", f"quarantine/{model}/labels/{stamp}/rejected.csv"),
        ("performance page", f"reports/performance/{model}/{stamp}/performance.html"),
        ("performance JSON", f"reports/performance/{model}/{stamp}/performance.json"),
    ]
    link = link_maker(store, expires_seconds)
    return [
        SharedLink(label, link(key), key)
        for label, key in wanted
        if store.exists(key) and (key == report or _complete_folder(store, key))
    ]


def _complete_folder(store: ObjectStore, key: str) -> bool:
    return store.exists(f"{key.rsplit('/', 1)[0]}/{MARKER}")
