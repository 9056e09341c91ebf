"""The PromptLayer sink: every LLM call to ``/rest/track-request``, every score to ``/rest/track-score``.

What the seed did through PromptLayer's own wrapper, done from a writer lane instead, so PromptLayer
being slow or down never reaches the caller, the SQL row or another sink:

* an interaction -> ``POST {base}/rest/track-request`` with ``function_name``
  (``openai.chat.completions.create`` / ``openai.responses.create``), ``provider_type``
  (``openai`` / ``openai.azure``), ``kwargs`` (the call's own SDK arguments), ``request_response``
  (the SDK's response as a dict; for a stream the assembled completion), ``request_start_time`` /
  ``request_end_time`` (epoch seconds), ``tags``, ``metadata`` (string values, plus
  ``wonkalytics_event_id``) and ``api_key``. Calls that failed (status ``error``) have no response
  and are not sent, as with PromptLayer's own wrapper. The answer's ``request_id`` goes back into
  the queue as an update of the row's ``pl_request_id`` column.
* an update of ``score`` -> ``POST {base}/rest/track-score`` with that ``request_id``, the score
  clamped to PromptLayer's integer 0-100, and ``api_key``. The request id comes from this process's
  memory, else from the table's ``pl_request_id`` column (the call was made by another process);
  while neither has it the update is handed back as not found, and the lane retries it for
  ``update_grace`` seconds.

Delivery: 429, 5xx and connection errors raise (the lane retries the batch with backoff); other 4xx
answers reject that op (logged, kept in the rejected-ops file). A request that got a 2xx is never
sent again: the ids of ops already delivered are remembered until their batch completes, so a
batch retried after a later op failed skips them. The API key is added when a request is sent; ops,
spool lines, log lines and error texts never hold it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from wonkalytics.access import json_safe
from wonkalytics.internal_errors import swallow
from wonkalytics.ops import Insert, Op, RowNotFoundError, Update
from wonkalytics.settings import Settings
from wonkalytics.sinks.base import Rejection
from wonkalytics.store.fit import resolve_column
from wonkalytics.store.sql import TableStore

__all__ = [
    "FUNCTION_NAMES",
    "PromptLayerRefusedError",
    "PromptLayerSink",
    "PromptLayerUnavailableError",
    "TableRequestIds",
    "clamp_score",
    "from_settings",
]

logger = logging.getLogger("wonkalytics")

FUNCTION_NAMES: Mapping[str, str] = {"chat": "openai.chat.completions.create", "responses": "openai.responses.create"}
"""PromptLayer's ``function_name`` per API."""

# Connect fails fast (a dead host); a read may take a while (PromptLayer under load) but never hangs the lane.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_MEMORY = 50_000  # response_id -> request_id pairs kept for scores (~100 bytes each)
_LOOKUP_PAUSE = 30.0  # seconds without table look-ups after one failed: a dead database must not hold the lane


class PromptLayerUnavailableError(ConnectionError):
    """PromptLayer did not take the request now (429, 5xx, no connection): retried with backoff."""


class PromptLayerRefusedError(ValueError):
    """PromptLayer refused the request for good (a 4xx other than 429); the op is rejected."""


def clamp_score(value: Any) -> int:
    """A score as PromptLayer takes it: an integer from 0 to 100 (87.6 -> 88, 120 -> 100).

    >>> clamp_score(87.6), clamp_score(-3), clamp_score(250)
    (88, 0, 100)
    """
    number = float(value)
    if number != number:
        raise ValueError("a score of NaN cannot be sent to PromptLayer")
    return round(min(100.0, max(0.0, number)))


def _as_request_id(value: Any) -> int | str | None:
    """PromptLayer's ids are integers; the table keeps them as text."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


class TableRequestIds:
    """Reads ``pl_request_id`` by ``response_id`` from the analytics table (a call of another process)."""

    def __init__(self, store: TableStore, column_map: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.column_map = dict(column_map or {})
        self._paused_until = 0.0

    def __call__(self, response_id: str) -> int | str | None:
        """The request id kept for ``response_id``; None when no row has one (yet)."""
        if time.monotonic() < self._paused_until:
            raise PromptLayerUnavailableError("the analytics table was unreachable a moment ago")
        try:
            columns = self.store.columns
            request_col = resolve_column("pl_request_id", columns, self.column_map)
            key_col = resolve_column("response_id", columns, self.column_map)
            if request_col is None or key_col is None:
                return None
            return _as_request_id(self.store.lookup(key_col, response_id, request_col))
        except Exception:
            self._paused_until = time.monotonic() + _LOOKUP_PAUSE
            raise


class PromptLayerSink:
    """Forwards interactions and scores to PromptLayer (see the module docstring)."""

    name = "promptlayer"
    primary = False
    needs_call = True

    def __init__(
        self,
        api_key: str,
        submit: Callable[[Op], None],
        *,
        base_url: str = "https://api.promptlayer.com",
        request_ids: Callable[[str], int | str | None] | None = None,
        score_fields: frozenset[str] = frozenset({"score"}),
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise ValueError("PromptLayer needs an API key (PROMPTLAYER_API_KEY)")
        self._key = api_key
        self._submit = submit
        # Credentials in the URL (https://user:pass@host) go to httpx as basic auth and nowhere else:
        # base_url is what error texts, log lines and repr show, and httpx logs the request URL.
        self.base_url, self._auth = _split_credentials(base_url)
        self._lookup = request_ids
        self._score_fields = frozenset(f.casefold() for f in score_fields)
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._delivered: set[str] = set()  # ops with a 2xx whose batch has not completed yet
        self._request_ids: OrderedDict[str, int | str] = OrderedDict()

    def __repr__(self) -> str:
        return f"PromptLayerSink(base_url={self.base_url!r})"  # never the key

    # -- the lane's interface ----------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        """Send each op PromptLayer has a use for, in order; skip ops delivered by an earlier try."""
        rejected: list[Rejection] = []
        for op in ops:
            key = _op_key(op)  # an insert's record is built before the lane hands it over: one key on every try
            if key in self._delivered:
                continue
            try:
                sent = self._send(op)
            except PromptLayerRefusedError as exc:
                logger.warning("wonkalytics: %s", exc)
                rejected.append(Rejection(op, exc))
                continue
            except RowNotFoundError as exc:
                rejected.append(Rejection(op, exc))
                continue
            if sent:
                self._delivered.add(key)
        # The batch is complete: none of its ops comes back, so their marks can go.
        self._delivered.difference_update(_op_key(op) for op in ops)
        return rejected

    def delivered(self, op: Op) -> bool:
        """True when PromptLayer already took ``op`` in a batch still being retried: the lane leaves it
        out of the spool at exit, so the next process does not send it again."""
        return _op_key(op) in self._delivered

    def is_transient(self, exc: BaseException) -> bool:
        """PromptLayer busy or unreachable: retry the batch later."""
        return isinstance(exc, PromptLayerUnavailableError | httpx.TransportError)

    def close(self, timeout: float) -> None:
        """Close the HTTP connections."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def after_fork(self) -> None:
        """Never share the parent's connections (nor its delivery marks) with a forked child."""
        self._client = None
        self._lock = threading.Lock()
        self._delivered = set()

    def probe(self) -> bool:
        """True when PromptLayer's host answers HTTP at all (for ``wonkalytics doctor``; sends no key, no data)."""
        try:
            with httpx.Client(timeout=httpx.Timeout(5.0)) as client:
                client.get(self.base_url + "/")
        except httpx.HTTPError:
            return False
        return True

    # -- sending -----------------------------------------------------------------------------------

    def _send(self, op: Op) -> bool:
        """Deliver one op; False when PromptLayer has no use for it."""
        if isinstance(op, Insert):
            record = op.record
            call = record.call
            if record.kind != "interaction" or call is None or call.get("status") == "error":
                return False
            answer = self._post("/rest/track-request", self.track_request_body(record.event_id, call))
            self._remember(record.event_id, call.get("response_id"), answer.get("request_id"))
            return True
        if op.field.casefold() not in self._score_fields or op.key_field != "response_id":
            return False
        request_id = self._request_id_for(str(op.key))
        try:
            score = clamp_score(op.value)
        except (TypeError, ValueError) as exc:
            raise PromptLayerRefusedError(f"score {op.value!r} for {op.key!r} is not a number: {exc}") from None
        self._post("/rest/track-score", {"request_id": request_id, "score": score})
        return True

    @staticmethod
    def track_request_body(event_id: str, call: Mapping[str, Any]) -> dict[str, Any]:
        """The track-request body of one call (``Record.call``), without the key."""
        metadata = {
            str(k): v if isinstance(v, str) else json.dumps(json_safe(v), ensure_ascii=False)
            for k, v in (call.get("metadata") or {}).items()
        }
        metadata["wonkalytics_event_id"] = event_id
        response = call.get("response")
        return {
            "function_name": FUNCTION_NAMES.get(str(call.get("api")), FUNCTION_NAMES["chat"]),
            "provider_type": "openai.azure" if call.get("provider_type") == "azure" else "openai",
            "args": [],
            "kwargs": dict(call.get("kwargs") or {}),
            "request_response": dict(response) if isinstance(response, Mapping) else {},
            "request_start_time": call.get("start_time"),
            "request_end_time": call.get("end_time"),
            "tags": [str(tag) for tag in call.get("tags") or ()],
            "metadata": metadata,
        }

    def _remember(self, event_id: str, response_id: Any, request_id: Any) -> None:
        request_id = _as_request_id(request_id)
        if request_id is None:
            return
        if isinstance(response_id, str) and response_id:
            self._request_ids[response_id] = request_id
            self._request_ids.move_to_end(response_id)
            while len(self._request_ids) > _MEMORY:
                self._request_ids.popitem(last=False)
        try:
            # optional: a team table without a pl_request_id column skips it (one warning), not a rejected op
            self._submit(Update(key=event_id, key_field="event_id", field="pl_request_id", value=str(request_id),
                                optional=True))
        except Exception:
            swallow("queueing PromptLayer's request id", "the row's pl_request_id stays empty")

    def _request_id_for(self, response_id: str) -> int | str:
        known = self._request_ids.get(response_id)
        if known is not None:
            return known
        found: int | str | None = None
        if self._lookup is not None:
            try:
                found = self._lookup(response_id)
            except Exception as exc:
                raise RowNotFoundError(
                    f"PromptLayer request id of {response_id!r} unknown: the table could not be read "
                    f"({type(exc).__name__})"
                ) from None
        if found is None:
            raise RowNotFoundError(f"no PromptLayer request id known for response {response_id!r} yet")
        self._request_ids[response_id] = found
        return found

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self._timeout, follow_redirects=False, auth=self._auth)
                client = self._client
        return client

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self._http().post(url, json={**body, "api_key": self._key}, headers={"X-API-KEY": self._key})
        except httpx.TransportError as exc:
            # Our own text, without the chain: httpx errors hold the request, and the request the key.
            problem = f"PromptLayer at {self.base_url} unreachable: {type(exc).__name__}"
            raise PromptLayerUnavailableError(problem) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            return answer if isinstance(answer, dict) else {}
        message = self._redact(_message(response))
        if status == 429 or status == 408 or status >= 500:
            raise PromptLayerUnavailableError(f"PromptLayer answered {status} to {path}: {message}")
        raise PromptLayerRefusedError(f"PromptLayer refused {path} with {status}: {message}")

    def _redact(self, text: str) -> str:
        for secret in (self._key, *(self._auth or ())):
            if secret:
                text = text.replace(secret, "***")
        return text


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user-info, and that user-info as a (user, password) pair for basic auth.

    >>> _split_credentials("https://ada:s3cret@pl.example/")
    ('https://pl.example', ('ada', 's3cret'))
    """
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url.rstrip("/"), None
    return str(parsed.copy_with(userinfo=b"")).rstrip("/"), (parsed.username, parsed.password)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:500]
    return str(data)[:200]


def _op_key(op: Op) -> str:
    if isinstance(op, Insert):
        built = op.built  # not built yet (still queued at exit): never delivered
        return "i:" + (built.event_id if built is not None else f"unbuilt-{id(op)}")
    return "u:" + op.id


def from_settings(settings: Settings, submit: Callable[[Op], None]) -> PromptLayerSink | None:
    """The sink when a PromptLayer key is set (``PROMPTLAYER_API_KEY`` / ``promptlayer_api_key``), else None."""
    secret = settings.promptlayer_api_key
    key = secret.get_secret_value() if secret is not None else ""
    if not key:
        return None
    store = TableStore.from_settings(settings, create=False)
    score_column = settings.column_map.get("score", "score")
    return PromptLayerSink(
        key,
        submit,
        base_url=settings.promptlayer_base_url,
        request_ids=TableRequestIds(store, settings.column_map),
        score_fields=frozenset({"score", score_column}),
        timeout=DEFAULT_TIMEOUT,  # looked up now, not at import: tests shorten it
    )
