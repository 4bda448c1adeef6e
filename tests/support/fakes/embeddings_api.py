"""A fake OpenAI-compatible embeddings endpoint (what OpenAI, Ollama, vLLM and text-embeddings-inference
serve), on 127.0.0.1, with deterministic vectors.

Shapes follow OpenAI's API reference (https://platform.openai.com/docs/api-reference/embeddings/create):

* request ``POST /v1/embeddings`` (also ``/embeddings``; logical name ``"embeddings"``) with a JSON body
  ``{"model": str, "input": str | [str, …], "encoding_format": "float" | "base64", "dimensions": int}``;
  ``input`` "cannot be an empty string" and an array holds at most 2,048 items (→ 400);
* response ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [float, …]}, …],
  "model": str, "usage": {"prompt_tokens": int, "total_tokens": int}}``, in input order; with
  ``encoding_format: "base64"`` each embedding is the base64 of its little-endian float32 bytes;
* errors as ``{"error": {"message", "type", "param", "code"}}``.

Authentication is optional: ``FakeEmbeddings(api_key="sk-…")`` answers 401 unless ``Authorization: Bearer
sk-…``; ``api_key=None`` (the default, like a local server) takes any request. ``models`` (default: any)
restricts the accepted model names (404 ``model_not_found`` otherwise).

Vectors come from hashed word unigrams: each lower-cased word adds ±1 at two positions picked by its hash, and
the sum is L2-normalised, so texts sharing words get similar vectors, the same text always gets the same vector,
and a different model name gives different vectors. ``dimensions`` (default 64) may be changed between calls to
test a server whose size changes; ``weights`` (default "") may be changed, or set apart on a second fake, to test
another model served under the same name (other vectors, the same size).

Failure injection and latency come from the base class (logical name defaults to ``"embeddings"``):
``fail(status=429, headers={"Retry-After": "1"})``, ``fail(status=500, times=3)``, ``fail(status=200,
body="not json")`` for a malformed answer, ``set_delay(2.0)``.

Example::

    with FakeEmbeddings() as fake:
        response = httpx.post(fake.url + "/v1/embeddings", json={"model": "m", "input": ["a", "b"]})
        assert fake.inputs == [["a", "b"]]
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._base import Call, FakeHTTPServer, Handler, Request, Response

__all__ = ["Call", "FakeEmbeddings"]

NAME = "embeddings"
MAX_INPUTS = 2048
_WORD = re.compile(r"\w+", re.UNICODE)


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> Response:
    return status, {}, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def fake_vector(text: str, *, model: str = "", dimensions: int = 64, weights: str = "") -> np.ndarray:
    """The fake's vector for `text`: hashed word unigrams, L2-normalised (a text with no word: a fixed unit
    vector). `weights` stands for the model behind the name: another value, other vectors."""
    vector = np.zeros(dimensions, dtype=np.float64)
    salt = f"{weights}\x00{model}" if weights else model
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(f"{salt}\x00{word}".encode(), digest_size=8).digest()
        for k in (0, 4):
            slot = int.from_bytes(digest[k:k + 3], "little") % dimensions
            vector[slot] += 1.0 if digest[k + 3] & 1 else -1.0
    norm = np.linalg.norm(vector)
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return (vector / norm).astype(np.float32)


class FakeEmbeddings(FakeHTTPServer):
    """Fake OpenAI-compatible embeddings server (see the module docstring)."""

    def __init__(self, *, api_key: str | None = None, dimensions: int = 64, weights: str = "",
                 models: Iterable[str] | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.dimensions = dimensions
        self.weights = weights
        self.models = set(models) if models is not None else None

    def start(self) -> FakeEmbeddings:
        super().start()
        return self

    def __enter__(self) -> FakeEmbeddings:
        return self.start()

    @property
    def base_url(self) -> str:
        """The API root as clients take it (``…/v1``)."""
        return self.url + "/v1"

    def fail(self, name: str = NAME, *, status: int = 500, times: int = 1,  # type: ignore[override]
             headers: dict[str, str] | None = None, body: bytes | str | dict[str, Any] | None = None) -> None:
        """Answer the next ``times`` embeddings calls with HTTP ``status`` (see the base class)."""
        super().fail(name, status=status, times=times, headers=headers, body=body)

    def set_delay(self, name_or_seconds: str | float, seconds: float | None = None) -> None:  # type: ignore[override]
        """``set_delay(2.0)`` delays every embeddings call; ``set_delay(name, seconds)`` as in the base class."""
        if seconds is None:
            super().set_delay(NAME, float(name_or_seconds))
        else:
            super().set_delay(str(name_or_seconds), seconds)

    # ------------------------------------------------------------ inspection
    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every embeddings call received (including failed ones), oldest first."""
        out = []
        for call in self.calls_to(NAME):
            try:
                out.append(json.loads(call.body))
            except ValueError:
                out.append({})
        return out

    @property
    def inputs(self) -> list[list[str]]:
        """The texts of each embeddings call, as lists (a single string input becomes a list of one)."""
        found = []
        for body in self.requests:
            texts = body.get("input")
            found.append([texts] if isinstance(texts, str) else list(texts or []))
        return found

    # ------------------------------------------------------------ plumbing
    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        if http_method == "POST" and path.rstrip("/") in ("/v1/embeddings", "/embeddings"):
            return NAME, self._embeddings
        return "unknown", lambda req, params: _error(404, f"Unknown request URL: {http_method} {path}",
                                                     code="unknown_url")

    def _failure_body(self, status: int) -> Any:
        kinds = {429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                 401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key")}
        message, type_, code = kinds.get(status, (f"The server had an error (injected HTTP {status})",
                                                  "server_error", None))
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params = json.loads(req.body or b"{}")
        return params if isinstance(params, dict) else {}

    def _embeddings(self, req: Request, params: dict[str, Any]) -> Response:
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            body = json.loads(req.body)
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            return _error(400, "'model' and 'input' are required.")
        model = body["model"]
        if self.models is not None and model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", code="model_not_found", param="model")
        texts = body["input"]
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or a non-empty array of strings.", param="input")
        if len(texts) > MAX_INPUTS:
            return _error(400, f"'input' has {len(texts)} items; at most {MAX_INPUTS}.", param="input")
        if any(t == "" for t in texts):
            return _error(400, "'input' cannot contain an empty string.", param="input")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
        dimensions = body.get("dimensions") or self.dimensions
        if not isinstance(dimensions, int) or dimensions < 1:
            return _error(400, "'dimensions' must be a positive integer.", param="dimensions")
        data = []
        for i, text in enumerate(texts):
            vector = fake_vector(text, model=model, dimensions=dimensions, weights=self.weights)
            embedding: Any = (base64.b64encode(vector.astype("<f4").tobytes()).decode() if encoding == "base64"
                              else [float(x) for x in vector])
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(len(_WORD.findall(t)) for t in texts)
        return 200, {}, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
