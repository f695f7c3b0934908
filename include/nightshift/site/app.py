"""The site's FastAPI app: the routes of `nightshift.links`, behind whatever authentication the caller plugs in.

The Airflow plugin mounts it at `links.PLUGIN_PREFIX` with Airflow's own user dependency and DAG permission check;
the unit tests mount it with fakes. Every route answers 401/403 (from the user dependency or `can_read`) before it
reads anything from the store.
"""

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nightshift.config import Settings, load_specs
from nightshift.pages import render
from nightshift.site.keys import RefusedKey, checked_key, checked_model
from nightshift.site.runs import DAG_KINDS, UNFINISHED, Page, RunFacts, ledger_entries, nightly_pages, split_dag_id
from nightshift.stores.objects import content_type_for, open_store

UserDependency = Callable[..., Any]
CanRead = Callable[[Any, str], bool]
RunLookup = Callable[[str, str], RunFacts | None]
KEY_SAFE = "/="
TABLE_VIEW = "table"
"""`?view=table` shows a CSV object as a page (browsers download text/csv instead of showing it)."""
TABLE_ROWS = 1000


def nightly_dag(model: str) -> str:
    return f"{model}_nightly"


def _href(request: Request, path: str) -> str:
    """An address under the app's mount point (`/nightshift` inside Airflow)."""
    return f"{request.scope.get('root_path', '')}{path}"


def _message(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    page = render("site_message.html.j2", title=title, message=message, home_href=_href(request, "/"))
    return HTMLResponse(page, status_code=status)


def create_app(
    user: UserDependency, can_read: CanRead, config: Callable[[], Settings], run_facts: RunLookup
) -> FastAPI:
    """The site; `user` is a FastAPI dependency returning the signed-in user (or raising 401/403), `can_read(user,
    dag_id)` says whether that user may read the DAG, `config()` gives the settings of each request and `run_facts`
    what Airflow knows of a run (None when there is no such run)."""
    app = FastAPI(title="nightshift pages", docs_url=None, redoc_url=None, openapi_url=None)
    User = Annotated[Any, Depends(user)]  # evaluated here: this module does not postpone annotations

    def require(who: Any, dag_id: str) -> None:
        if not can_read(who, dag_id):
            raise HTTPException(403, f"your Airflow role may not read DAG {dag_id}, so not its pages either")

    @app.exception_handler(RefusedKey)
    def refused(request: Request, exc: RefusedKey) -> HTMLResponse:
        return _message(request, exc.status, "Not served", exc.message)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, who: User) -> HTMLResponse:
        settings = config()
        models = [
            {"name": spec.name, "kind": spec.task, "href": _href(request, f"/models/{quote(spec.name)}/")}
            for spec in load_specs(settings.models_dir)
            if can_read(who, nightly_dag(spec.name))
        ]
        page = render(
            "site_home.html.j2",
            title="nightshift",
            models=models,
            store=settings.store_uri,
            models_dir=str(settings.models_dir),
        )
        return HTMLResponse(page)

    @app.get("/models/{model}/")
    def model_index(request: Request, model: str, who: User) -> Response:
        settings = config()
        checked_model(model, _models(settings))
        require(who, nightly_dag(model))
        if not open_store(settings.store_uri).exists(f"reports/drift/{model}/index.html"):
            message = f"no drift index of {model} yet in {settings.store_uri}: no night of it has been measured"
            return _message(request, 404, f"{model}: no drift index yet", message)
        return RedirectResponse(
            _href(request, f"/store/reports/drift/{quote(model, safe=KEY_SAFE)}/index.html"), status_code=307
        )

    @app.get("/store/{key:path}")
    def store_object(request: Request, key: str, who: User, view: str | None = None) -> Response:
        settings = config()
        key, model = checked_key(key, _models(settings))
        require(who, nightly_dag(model))
        return _store_route(request, settings, key, view)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str, who: User) -> HTMLResponse:
        return _run_route(request, config(), dag_id, run_id, lambda: require(who, dag_id), run_facts)

    return app


def _store_route(request: Request, settings: Settings, key: str, view: str | None) -> Response:
    if view not in (None, TABLE_VIEW) or (view and not key.endswith(".csv")):
        return _message(request, 400, "No such view", f"view={view!r}: only view={TABLE_VIEW} of a .csv object")
    try:
        body = open_store(settings.store_uri).read_bytes(key)
    except FileNotFoundError:
        return _message(request, 404, "Not in the store", f"{key}: no such object in {settings.store_uri}")
    if view == TABLE_VIEW:
        return HTMLResponse(_table_page(request, key, body))
    return Response(body, media_type=content_type_for(key))


def _run_route(
    request: Request, settings: Settings, dag_id: str, run_id: str, require: Callable[[], None], run_facts: RunLookup
) -> HTMLResponse:
    found = split_dag_id(dag_id, _models(settings))
    if found is None:
        known = ", ".join(f"<model>_{kind}" for kind in DAG_KINDS)
        return _message(request, 404, "Not a nightshift DAG", f"DAG {dag_id!r} is none of nightshift's ({known})")
    require()
    run = run_facts(dag_id, run_id)
    if run is None:
        return _message(request, 404, "No such run", f"DAG {dag_id} has no run {run_id!r}")
    return HTMLResponse(_run_page(request, settings, found, run))


def _table_page(request: Request, key: str, body: bytes) -> str:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig", errors="replace"))))
    header, data = (rows[0], rows[1:]) if rows else ([], [])
    return render(
        "site_table.html.j2",
        title=key.rsplit("/", 1)[-1],
        key=key,
        header=header,
        rows=data[:TABLE_ROWS],
        shown=min(len(data), TABLE_ROWS),
        total=len(data),
        raw_href=_href(request, f"/store/{quote(key, safe=KEY_SAFE)}"),
        home_href=_href(request, "/"),
    )


def _page_links(request: Request, page: Page) -> dict[str, Any]:
    """A page of a run with its address: a CSV opens as a table, its raw file linked beside."""
    if page.key is None:
        return {**asdict(page), "href": None, "raw_href": None}
    raw = _href(request, f"/store/{quote(page.key, safe=KEY_SAFE)}")
    if page.key.endswith(".csv"):
        return {**asdict(page), "href": f"{raw}?view={TABLE_VIEW}", "raw_href": raw}
    return {**asdict(page), "href": raw, "raw_href": None}


def _models(settings: Settings) -> list[str]:
    return [spec.name for spec in load_specs(settings.models_dir)]


def _run_page(request: Request, settings: Settings, found: tuple[str, str], run: RunFacts) -> str:
    model, kind = found
    context: dict[str, Any] = {"night": None, "entries": None, "pages": [], "index_href": ""}
    if kind == "nightly" and run.day is not None:
        night = nightly_pages(open_store(settings.store_uri), model, run)
        context["night"] = night
        context["pages"] = [_page_links(request, page) for page in night.pages]
        context["index_href"] = _href(request, f"/models/{quote(model)}/")
        title = f"{model}: the night of {night.day}"
    elif kind == "nightly":
        return render(
            "site_message.html.j2",
            title=f"{model}: a run without a night",
            message=f"run {run.run_id} has no logical date, so no night's pages",
            home_href=_href(request, "/"),
        )
    else:
        from nightshift.stores import warehouse

        context["entries"] = ledger_entries(
            warehouse.ledger(warehouse.open_engine(settings.warehouse_url), model), run.run_id
        )
        title = f"{model}: the {kind} run's promotion-ledger entry"
    return render(
        "site_run.html.j2", title=title, run=run, unfinished=UNFINISHED, home_href=_href(request, "/"), **context
    )
