"""The local web dashboard: FastAPI, server-rendered Jinja2 pages, Plotly charts served by the app itself.

>>> from wonkalytics.store.reader import open_reader
>>> app = create_app(open_reader("sqlite:///wonkalytics.db", "wonkalytics_interactions"))  # connects on first request
>>> sorted(r.path for r in app.routes if r.path.startswith("/api/"))[:3]
['/api/counts', '/api/fields', '/api/groups']

Every page reads through a :class:`~wonkalytics.store.reader.Reader` (SQL in read-only transactions, or
ClickHouse): the app never learns which engine answers. The
charting library's JavaScript is the ``plotly.min.js`` inside the installed ``plotly`` package, served
at ``/vendor/plotly.min.js``: nothing is loaded from a CDN, so the dashboard works with no network.
With a ``token``, every request must carry it (``Authorization: Bearer``, ``?token=`` or the cookie
that a ``?token=`` link sets, so a browser can follow links).
"""

from __future__ import annotations

import csv
import hmac
import io
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from wonkalytics.dashboard.detail import detail_sections
from wonkalytics.dashboard.params import View
from wonkalytics.errors import StoreError, UnknownColumnError
from wonkalytics.store.queries import SEARCH_COUNT_CAP, SORTABLE, Page, ReadStore
from wonkalytics.store.reader import Reader, SqlReader, as_reader, with_previous

__all__ = ["create_app", "plotly_js_path"]

_HERE = Path(str(resources.files("wonkalytics.dashboard")))
_COOKIE = "wonkalytics_token"
_BREAKDOWNS = ("model", "tenant_id", "username", "status")


def plotly_js_path() -> Path:
    """``plotly.min.js`` of the installed ``plotly`` package (the dashboard's only chart library)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def _change(current: float | None, previous: float | None) -> str | None:
    if current is None or previous is None:
        return None
    if previous == 0:
        return None if current == 0 else "new"
    return f"{(current - previous) / previous * 100:+.0f}%"


def _kpis(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    def error_rate(o: dict[str, Any]) -> float | None:
        return o["status"]["error"] / o["interactions"] * 100 if o["interactions"] else None

    def tokens(o: dict[str, Any]) -> int:
        return int(o["prompt_tokens"] + o["completion_tokens"])

    rows: list[tuple[str, str, Callable[[dict[str, Any]], Any], str, bool]] = [
        ("interactions", "Interactions", lambda o: o["interactions"], "{:,}", True),
        ("users", "Users", lambda o: o["users"], "{:,}", True),
        ("error_rate", "Error rate", error_rate, "{:.1f}%", False),
        ("avg_score", "Average score", lambda o: o["avg_score"], "{:.1f}", True),
        ("duration_p95", "Duration p95", lambda o: o["duration_ms"]["p95"], "{:,.0f} ms", False),
        ("ttft_p95", "First token p95", lambda o: o["ttft_ms"]["p95"], "{:,.0f} ms", False),
        ("tokens", "Tokens", tokens, "{:,}", True),
        ("cost_usd", "Cost (USD)", lambda o: o["cost_usd"], "${:,.4f}", True),
    ]
    cards = []
    for key, label, get, fmt, up_is_good in rows:
        value, old = get(now), get(before)
        change = _change(value, old)
        worse = change not in (None, "new") and (change.startswith("-") == up_is_good) and change != "+0%"
        cards.append({"key": key, "label": label, "value": "unknown" if value is None else fmt.format(value),
                      "change": change, "worse": worse})
    return cards


def create_app(reader: Reader | ReadStore, *, token: str | None = None, default_tz: str = "UTC") -> FastAPI:
    """The dashboard app on ``reader``'s table (any engine); with ``token`` every request must present it."""
    return _routes(as_reader(reader), token, default_tz)


def _routes(reader: Reader, token: str | None, default_tz: str) -> FastAPI:
    app = FastAPI(title="Wonkalytics", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    for template in ("overview.html", "interactions.html", "detail.html", "message.html"):
        templates.get_template(template)   # compiled now (Jinja2 caches them), not in a user's first request
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is None or request.url.path == "/healthz":
            return await call_next(request)
        header = request.headers.get("authorization", "")
        given = [header[7:] if header.lower().startswith("bearer ") else "", request.query_params.get("token", ""),
                 request.cookies.get(_COOKIE, "")]
        if not any(hmac.compare_digest(g.encode(), token.encode()) for g in given if g):
            return JSONResponse({"error": "a token is required: send 'Authorization: Bearer <token>' or add "
                                 "?token=<token> to the URL"}, status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(_COOKIE, token, httponly=True, samesite="strict")
        return response

    def view_of(request: Request) -> View:
        try:
            return View.from_query(dict(request.query_params), default_tz=default_tz)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def page(request: Request, name: str, http_status: int = 200, /, **context: Any) -> HTMLResponse:
        context.setdefault("view", None)
        return templates.TemplateResponse(request, name, {"table": reader.name, **context}, status_code=http_status)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return page(request, "message.html", 503, title="The table cannot be read", message=str(exc),
                    hint="Run `wonkalytics demo` to create it with a few sample chats, or `wonkalytics init`.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.endswith(".csv"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "message.html", exc.status_code, title="That did not work", message=str(exc.detail),
                    hint="Go back, or start again from the overview.")

    def checked(work: Callable[[], Any]) -> Any:
        try:
            return work()
        except (UnknownColumnError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        reader.probe()  # the database answers and the table exists
        return {"status": "ok"}  # open without the token (load balancers), so it names nothing

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(_HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request) -> HTMLResponse:
        view = view_of(request)
        # the KPIs show p95s, so the previous period goes without its p50s; both in one transaction
        now, before = checked(lambda: with_previous(reader, view.period, view.filters))
        fields = [f for f in reader.category_fields() if f not in _BREAKDOWNS and f not in ("model", "status")]
        by = view.extra.get("by") or (fields[0] if fields else None)
        return page(request, "overview.html", view=view, overview=now, kpis=_kpis(now, before),
                    breakdowns=[f for f in _BREAKDOWNS if reader.field_column(f) is not None], fields=fields, by=by,
                    empty=now["interactions"] == 0)

    @app.get("/interactions", response_class=HTMLResponse)
    def interactions_page(request: Request) -> HTMLResponse:
        view = view_of(request)
        result = checked(lambda: _page(reader, view))
        models = [m for m in _models(reader, view) if m is not None] if reader.field_column("model") is not None else []
        return page(request, "interactions.html", view=view, result=result, models=models,
                    sortable=[s for s in SORTABLE if reader.field_column(s) is not None], local=_local(view))

    @app.get("/interactions/{key}", response_class=HTMLResponse)
    def detail_page(request: Request, key: str) -> HTMLResponse:
        view = view_of(request)
        row = reader.interaction(key)
        if row is None:
            raise HTTPException(404, f"no interaction {key!r} in table {reader.name!r}")
        return page(request, "detail.html", view=view, key=key, **detail_sections(reader, row, _local(view)))

    # -- JSON -------------------------------------------------------------------------------------

    @app.get("/api/overview")
    def api_overview(request: Request, by: str | None = None) -> dict[str, Any]:
        view = view_of(request)
        result: dict[str, Any] = checked(lambda: reader.overview(view.period, view.filters))
        if by:
            result["groups"] = checked(lambda: reader.groups(view.period, by, view.filters))
        return result

    @app.get("/api/groups")
    def api_groups(request: Request, by: str, limit: int = 12, percentiles: bool = False) -> list[dict[str, Any]]:
        view = view_of(request)
        groups: list[dict[str, Any]] = checked(
            lambda: reader.groups(view.period, by, view.filters, limit=limit, percentiles=percentiles))
        return groups

    @app.get("/api/counts")
    def api_counts(request: Request, by: str, limit: int = 12) -> list[dict[str, Any]]:
        view = view_of(request)
        counts: list[dict[str, Any]] = checked(lambda: reader.counts(view.period, by, view.filters, limit=limit))
        return counts

    @app.get("/api/timeseries")
    def api_timeseries(request: Request, bucket: str = "auto") -> list[dict[str, Any]]:
        view = view_of(request)
        series: list[dict[str, Any]] = checked(lambda: reader.timeseries(view.period, view.filters, bucket=bucket))
        return series

    @app.get("/api/scores")
    def api_scores(request: Request) -> list[dict[str, Any]]:
        view = view_of(request)
        return reader.score_distribution(view.period, view.filters)

    @app.get("/api/fields")
    def api_fields() -> list[str]:
        return reader.category_fields()

    @app.get("/api/interactions")
    def api_interactions(request: Request, page_size: int = 50) -> dict[str, Any]:
        view = view_of(request)
        result = checked(lambda: reader.interactions(view.period, view.filters, sort=view.sort,
                                                     descending=view.descending, page=view.page,
                                                     page_size=page_size))
        return {"total": result.total, "page": result.page, "pages": result.pages, "rows": result.rows}

    @app.get("/api/interactions/{key}")
    def api_interaction(key: str) -> dict[str, Any]:
        row = reader.interaction(key)
        if row is None:
            raise HTTPException(404, f"no interaction {key!r}")
        return row

    @app.get("/export.csv")
    def export_csv(request: Request) -> StreamingResponse:
        view = view_of(request)
        checked(lambda: reader.check(view.period, view.filters))  # a bad filter fails before streaming starts
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return StreamingResponse(
            csv_lines(reader.iter_rows(view.period, view.filters, events=False), reader.columns()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{reader.name}-{stamp}.csv"'})

    return app


def _page(reader: Reader, view: View) -> Page:
    """The interactions page of ``view``; a text search on SQL counts its matches up to :data:`SEARCH_COUNT_CAP`."""
    if view.filters.text and isinstance(reader, SqlReader):
        return reader.store.interactions(view.period, view.filters, sort=view.sort, descending=view.descending,
                                         page=view.page, count_cap=SEARCH_COUNT_CAP)
    return reader.interactions(view.period, view.filters, sort=view.sort, descending=view.descending, page=view.page)


def _models(reader: Reader, view: View) -> list[Any]:
    """The models of the period, most used first: the choices of the interactions page's model filter."""
    return [c["value"] for c in reader.counts(view.period, "model", limit=100)]   # sums only: no users per model


def _local(view: View) -> Callable[[Any], str]:
    def local(moment: Any) -> str:
        if not isinstance(moment, datetime):
            return "" if moment is None else str(moment)
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return aware.astimezone(view.period.tz).strftime("%Y-%m-%d %H:%M:%S")
    return local


def csv_lines(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    """CSV text of ``rows``, a header line first, one line at a time (constant memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(columns)
    yield flush()
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        yield flush()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value
