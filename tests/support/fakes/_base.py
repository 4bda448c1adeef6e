"""Shared machinery for Seam's fake HTTP APIs (FakeSlack, FakeZendesk).

Each fake is a real ``http.server.ThreadingHTTPServer`` bound to an ephemeral
port on 127.0.0.1 and served from a daemon thread.  The base class provides:

* call recording (:class:`Call`, ``calls``, ``calls_to``, ``clear_calls``),
* failure injection (``fail``, ``clear_failures``) and per-method latency (``set_delay``),
* a change made between two calls (``after_answer``: a ticket updated while a listing is read),
* polling helpers for asynchronous code under test (``wait_for``),
* lifecycle (``start``/``stop``/context manager, ``url``),
* the clock calls are stamped with (``clock``: ``time.monotonic`` unless a simulation sets its own).

Subclasses implement :meth:`FakeHTTPServer._dispatch`, which maps a request to
a logical call name and a handler, and :meth:`FakeHTTPServer._failure_body`.
All state lives on the instance and is guarded by ``self._lock``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

#: What a handler returns: (HTTP status, extra response headers, JSON-able body).
Response = tuple[int, dict[str, str], Any]


@dataclass
class Call:
    """One HTTP request received by a fake.

    ``method`` is the logical API name (e.g. ``"chat.postMessage"`` or
    ``"get_ticket"``), ``path`` the raw request path (without query string),
    ``params`` the decoded request parameters, ``headers`` the request headers
    with lower-cased names, ``body`` the raw request body.  ``failed`` is True
    when the answer came from :meth:`FakeHTTPServer.fail` injection.
    ``status`` and ``response`` are filled in once the answer is known.
    """

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    failed: bool = False
    http_method: str = "POST"
    status: int | None = None
    response: Any = None
    received_at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """True for a completed, non-injected call answered with a success.

        Success means HTTP status < 400 and, for Slack-style bodies, no
        ``"ok": false``.
        """
        if self.failed or self.status is None or self.status >= 400:
            return False
        return not (isinstance(self.response, dict) and self.response.get("ok") is False)


@dataclass
class _Failure:
    status: int
    remaining: int
    headers: dict[str, str]
    body: bytes | str | dict[str, Any] | None
    applied: bool = False
    drop: bool = False


@dataclass
class Request:
    """A parsed request handed to subclass handlers."""

    http_method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


#: A handler receives the parsed request and its decoded parameters (see
#: :meth:`FakeHTTPServer._parse_params`) and returns a :data:`Response`.
Handler = Callable[[Request, dict[str, Any]], Response]


class FakeHTTPServer:
    """Base class: a stateful fake HTTP API served on 127.0.0.1."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._after: dict[str, list[Callable[[], None]]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: What ``Call.received_at`` is read from (a benchmark running on simulated time sets its clock here).
        self.clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeHTTPServer:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, each keep-alive answer waits for
            # the client's delayed ACK (~40 ms), which would swamp every latency measured against the fakes.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                fake._handle_http(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s: " + format, type(fake).__name__, *args)

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------- call records
    @property
    def calls(self) -> list[Call]:
        """Snapshot of every recorded call, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, name: str) -> list[Call]:
        """All recorded calls (including failed ones) to logical method ``name``."""
        with self._lock:
            return [c for c in self._calls if c.method == name]

    def clear_calls(self) -> None:
        """Forget recorded calls (state such as messages/tickets is kept)."""
        with self._lock:
            self._calls.clear()

    def fail(
        self,
        name: str,
        *,
        status: int = 500,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict[str, Any] | None = None,
        applied: bool = False,
        drop: bool = False,
    ) -> None:
        """Answer the next ``times`` calls to ``name`` with ``status``.

        ``headers`` are added to the response (e.g. ``{"Retry-After": "1"}``);
        ``body`` overrides the default error body (dicts are sent as JSON).
        With ``applied`` the call takes effect first (a gateway that gave up
        after the request went through); with ``drop`` the connection closes
        with no answer at all (after the call took effect, if ``applied``).
        Injections queue up: a second ``fail`` applies after the first is used.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._failures.setdefault(name, []).append(
                _Failure(status=status, remaining=times, headers=dict(headers or {}), body=body,
                         applied=applied, drop=drop)
            )

    def clear_failures(self, name: str | None = None) -> None:
        """Drop the injected failures still queued for ``name`` (or for every name)."""
        with self._lock:
            if name is None:
                self._failures.clear()
            else:
                self._failures.pop(name, None)

    def set_delay(self, name: str, seconds: float) -> None:
        """Sleep ``seconds`` before answering each call to ``name`` (0 disables)."""
        with self._lock:
            if seconds <= 0:
                self._delays.pop(name, None)
            else:
                self._delays[name] = seconds

    def after_answer(self, name: str, action: Callable[[], None]) -> None:
        """Run ``action`` once the next successful answer to ``name`` is made, before it is sent: the client
        sees the change only from its next call on (as when a ticket is updated between two pages of a listing).
        Actions queue up: a second one runs after the next answer after that."""
        with self._lock:
            self._after.setdefault(name, []).append(action)

    def wait_for(self, name: str, count: int = 1, *, timeout: float = 5.0) -> list[Call]:
        """Poll until at least ``count`` successful calls to ``name`` exist.

        Returns those successful calls (see :attr:`Call.ok`); raises
        ``AssertionError`` listing every call seen if the deadline passes.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                done = [c for c in self._calls if c.method == name and c.ok]
                if len(done) >= count:
                    return done
                seen = [
                    f"{c.method}(status={c.status}, failed={c.failed})" for c in self._calls
                ]
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{type(self).__name__}: expected >= {count} successful {name!r} "
                    f"call(s) within {timeout}s, got {len(done)}; calls seen: {seen}"
                )
            time.sleep(0.01)

    # ---------------------------------------------------------- subclass hooks
    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        """Map a request to (logical name, handler)."""
        raise NotImplementedError

    def _failure_body(self, status: int) -> Any:
        """Default JSON body for an injected failure with ``status``."""
        return {"error": f"injected HTTP {status}"}

    # ------------------------------------------------------------ HTTP plumbing
    def _handle_http(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(h.command, split.path, query, headers, body)

        name, handler = self._dispatch(h.command, split.path)
        try:
            params = self._parse_params(req)
        except Exception:  # malformed input: handlers re-validate the raw body
            params = dict(query)
        call = Call(
            method=name,
            path=split.path,
            params=params,
            headers=headers,
            body=body,
            http_method=h.command,
            received_at=self.clock(),
        )
        with self._lock:
            self._calls.append(call)
            delay = self._delays.get(name, 0.0)
            failure = None
            queue = self._failures.get(name)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.pop(0)
        if delay:
            time.sleep(delay)

        if failure is not None and failure.applied:
            try:
                handler(req, params)
            except Exception:  # the answer is the injected failure either way
                logger.exception("%s handler for %s crashed", type(self).__name__, name)
        if failure is not None and failure.drop:
            with self._lock:
                call.failed = True
            h.close_connection = True
            return
        if failure is not None:
            call.failed = True
            status, extra = failure.status, dict(failure.headers)
            payload: Any = failure.body if failure.body is not None else self._failure_body(status)
        else:
            try:
                status, extra, payload = handler(req, params)
            except Exception as exc:  # a bug in the fake: answer 500, keep serving
                logger.exception("%s handler for %s crashed", type(self).__name__, name)
                status, extra, payload = 500, {}, {"error": f"fake crashed: {exc!r}"}
            if status < 400:
                with self._lock:
                    queued = self._after.get(name)
                    action = queued.pop(0) if queued else None
                if action is not None:
                    action()

        if isinstance(payload, bytes):
            raw = payload
        elif isinstance(payload, str):
            raw = payload.encode("utf-8")
        else:
            raw = json.dumps(payload).encode("utf-8")
        with self._lock:
            call.status = status
            call.response = payload
        h.send_response(status)
        if not any(k.lower() == "content-type" for k in extra):
            h.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in extra.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(raw)

    def _parse_params(self, req: Request) -> dict[str, Any]:
        """Decode request parameters (override per API); may raise on bad input."""
        return dict(req.query)

