"""A fake of the OpenAI Chat Completions API (the one endpoint Seam uses), on 127.0.0.1.

Point ``openai.OpenAI(base_url=fake.url + "/v1", api_key=fake.api_key)`` at a running :class:`FakeOpenAI`.
``POST /v1/chat/completions`` (logical name ``"chat.completions"``) needs ``Authorization: Bearer {api_key}``;
otherwise it answers 401 with OpenAI's error shape. Anything else is recorded as ``"unknown"`` and answered 404.

Each call takes the next scripted answer from a queue:

* :meth:`reply_json` – a normal completion whose ``message.content`` is ``json.dumps(obj)``;
* :meth:`reply_text` – raw ``content`` (e.g. invalid JSON);
* :meth:`refuse` – ``message.refusal`` set, ``content`` null;
* :meth:`finish` – a completion cut off with ``finish_reason`` (``"length"``, ``"content_filter"``).

Failure injection and latency come from the base class: ``fail(status=429, headers={"Retry-After": "1"})``,
``fail(status=500, times=5)``, ``set_delay(2.0)`` (the logical name defaults to ``"chat.completions"``).
Injected failures do not consume the reply queue. :meth:`drip` sends the next answer's body a few bytes at a
time (a server or proxy that keeps a connection alive without finishing the answer).

With an empty queue the answer is a valid, grounded one built from the first ``<passage id="…">`` block in the
prompt (or a null answer when there is none), so tests that only need *an* engine work without scripting.

Example::

    with FakeOpenAI() as fake:
        fake.reply_json({"answer": None, ...})
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key=fake.api_key)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert fake.requests[0]["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections import deque
from typing import Any

from ._base import Call, FakeHTTPServer, Handler, Request, Response

__all__ = ["Call", "FakeOpenAI"]

NAME = "chat.completions"
_PASSAGE = re.compile(r'<passage id="([^"]*)">\n(.*?)\n</passage>', re.DOTALL)


class _Dripping:
    """A response stream whose first write (the status line and headers) goes at once and the rest slowly."""

    def __init__(self, raw: Any, interval: float, chunk: int) -> None:
        self._raw, self._interval, self._chunk, self._writes = raw, interval, max(1, chunk), 0

    def write(self, data: bytes) -> int:
        self._writes += 1
        if self._writes == 1:
            return self._raw.write(data)
        try:
            for start in range(0, len(data), self._chunk):
                self._raw.write(data[start:start + self._chunk])
                self._raw.flush()
                time.sleep(self._interval)
        except OSError:  # the client gave up: that is the point
            pass
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _error(status: int, message: str, type_: str, code: str | None = None) -> Response:
    return status, {}, {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FakeOpenAI(FakeHTTPServer):
    """Fake OpenAI Chat Completions server (see module docstring)."""

    def __init__(self, *, api_key: str = "sk-test-fake-openai-key") -> None:
        super().__init__()
        self.api_key = api_key
        self._replies: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._drips: deque[tuple[float, int]] = deque()
        # The `response_format` types this server takes; others get a 400 naming the parameter, as servers without
        # structured outputs answer (None: any).
        self.response_formats: set[str] | None = None

    def start(self) -> FakeOpenAI:
        super().start()
        return self

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    # ------------------------------------------------------------ scripting
    def reply_json(self, obj: Any) -> None:
        """Next answer: a completion whose content is ``obj`` as JSON text."""
        self.reply_text(json.dumps(obj))

    def reply_text(self, text: str | None) -> None:
        """Next answer: a completion whose content is ``text`` verbatim."""
        with self._lock:
            self._replies.append({"content": text, "refusal": None, "finish_reason": "stop"})

    def refuse(self, text: str = "I'm sorry, I can't help with that.") -> None:
        """Next answer: a refusal (``message.refusal`` set, ``content`` null)."""
        with self._lock:
            self._replies.append({"content": None, "refusal": text, "finish_reason": "stop"})

    def finish(self, reason: str = "length", content: str | None = '{"answer": "This is cut') -> None:
        """Next answer: a completion that stopped with ``finish_reason=reason`` (truncated content by default)."""
        with self._lock:
            self._replies.append({"content": content, "refusal": None, "finish_reason": reason})

    def drip(self, interval: float, *, chunk: int = 1, times: int = 1) -> None:
        """Send the body of the next ``times`` completion answers ``chunk`` bytes every ``interval`` seconds (the
        status line and headers go out at once)."""
        with self._lock:
            self._drips.extend([(interval, chunk)] * times)

    def fail(self, name: str = NAME, *, status: int = 500, times: int = 1,  # type: ignore[override]
             headers: dict[str, str] | None = None, body: bytes | str | dict[str, Any] | None = None) -> None:
        """Answer the next ``times`` completion calls with HTTP ``status`` (see the base class)."""
        super().fail(name, status=status, times=times, headers=headers, body=body)

    def set_delay(self, name_or_seconds: str | float, seconds: float | None = None) -> None:  # type: ignore[override]
        """``set_delay(2.0)`` delays every completion call; ``set_delay(name, seconds)`` as in the base class."""
        if seconds is None:
            super().set_delay(NAME, float(name_or_seconds))
        else:
            super().set_delay(str(name_or_seconds), seconds)

    # ------------------------------------------------------------ inspection
    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every completion call received (including failed ones), oldest first."""
        out = []
        for call in self.calls_to(NAME):
            try:
                out.append(json.loads(call.body))
            except ValueError:
                out.append({})
        return out

    @staticmethod
    def default_answer(request: dict[str, Any]) -> dict[str, Any]:
        """What the fake answers with an empty queue: grounded in the first passage of the prompt."""
        prompt = "\n".join(str(m.get("content") or "") for m in request.get("messages") or [] if isinstance(m, dict))
        found = _PASSAGE.search(prompt)
        if not found:
            return {"summary": "The customer asks a question the knowledge does not cover.", "topic": "other",
                    "tone": 0.0, "wants_human": False, "supported_by": [], "answer": None, "confidence": 0.1}
        return {"summary": "The customer asks a question the knowledge covers.", "topic": "general", "tone": 0.0,
                "wants_human": False, "supported_by": [found.group(1)], "answer": found.group(2).strip(),
                "confidence": 0.92}

    # ------------------------------------------------------------ plumbing
    def _handle_http(self, h: Any) -> None:
        with self._lock:
            drip = self._drips.popleft() if self._drips and h.command == "POST" else None
        if drip is not None:
            h.wfile = _Dripping(h.wfile, *drip)
        super()._handle_http(h)

    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        if http_method == "POST" and path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
            return NAME, self._chat_completions
        return "unknown", lambda req, params: _error(404, f"Unknown request URL: {http_method} {path}",
                                                     "invalid_request_error", "unknown_url")

    def _failure_body(self, status: int) -> Any:
        kinds = {429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                 401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key")}
        message, type_, code = kinds.get(status, (f"The server had an error (injected HTTP {status})",
                                                  "server_error", None))
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params = json.loads(req.body or b"{}")
        return params if isinstance(params, dict) else {}

    def _chat_completions(self, req: Request, params: dict[str, Any]) -> Response:
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = json.loads(req.body)
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return _error(400, "'model' and 'messages' are required.", "invalid_request_error")
        wanted = (body.get("response_format") or {}).get("type") if isinstance(body.get("response_format"), dict) \
            else None
        if wanted and self.response_formats is not None and wanted not in self.response_formats:
            return 400, {}, {"error": {"message": f"response_format type '{wanted}' is not supported by this server",
                                       "type": "invalid_request_error", "param": "response_format", "code": None}}
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
        if scripted is None:
            scripted = {"content": json.dumps(self.default_answer(body)), "refusal": None, "finish_reason": "stop"}
        scripted = copy.deepcopy(scripted)
        content = scripted["content"]
        completion = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": scripted["refusal"],
                            "annotations": []},
                "logprobs": None,
                "finish_reason": scripted["finish_reason"],
            }],
            "usage": {"prompt_tokens": len(req.body) // 4, "completion_tokens": len(content or "") // 4,
                      "total_tokens": (len(req.body) + len(content or "")) // 4},
        }
        return 200, {"x-request-id": f"req_fake{completion['id'][12:]}"}, completion
