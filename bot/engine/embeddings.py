"""Optional semantic evidence: sentence embeddings from any OpenAI-compatible `/v1/embeddings` server (OpenAI,
Ollama, vLLM, text-embeddings-inference, or bench/embeddings_server.py), cached by model, server and text hash.

Turned on by `EMBEDDINGS_MODEL` (bot.config); `build_engine` then hands an `Embedder` to the local engine.
Nothing here is required: Seam's default install has no model and no torch, and every failure of the server
(network, HTTP error after the retries, a malformed answer, vectors of two sizes in one call) makes `embed` return
None, so the engine decides on its lexical evidence alone. Each kind of failure is logged once per process,
not once per call, so a server that is down does not flood the log.

The contract the engine relies on (`Embedder.embed`):
- `embed(texts)` returns a float32 array of shape `(len(texts), dimension)`, row i for texts[i] (input order),
  each row L2-normalised (norm 1), so a dot product is the cosine similarity; a text that is empty or only
  whitespace gets an all-zero row (similar to nothing) and is never sent; every row of one answer has one size;
- or None, for the whole call, when any text could not be embedded (or, before any vector was seen, when
  every text is empty: the size is unknown); it never raises. The rows it did get are cached, so the next call
  asks only for the rest;
- `dimension` is the size of the latest answer (None before any); `model` is the model name;
- after a failure, calls within `cooldown` seconds make no request: texts all in the cache still come back,
  anything else is None at once, so a dead server costs the engine nothing per ticket;
- safe to call from several threads at once.

The cache (`EmbeddingCache`) maps (cache key, sha256 of the text sent) to the vector's float32 bytes: re-fitting
or re-assessing does not embed a text again (but for the one a new embedder checks, below). The cache key is the
model name and the server (`cache_key`: "name @ scheme://host[:port]/path" — no user name, password or query,
so never a key), because two servers may serve different models under one name (Ollama's `nomic-embed-text`
and another build's): moving `EMBEDDINGS_BASE_URL` starts an empty cache rather than mixing the two. Rows an
older Seam keyed by the model name alone are never read again; retention (`Store.expire_vectors`) drops them
with the rest by age. The text sent is the text with its runs of whitespace collapsed to one space and clipped
to `MAX_INPUT_CHARS`; for nearly every ticket that is the text itself. A vector put again for the same key and
text replaces the stored one.

The size of the vectors is the server's, never the cache's. The model behind a name can change (an operator pulls
another build, a server swaps it) and with it the size; cached vectors of the old size must then neither fix the
size nor be mixed with the new ones:
- within one `Embedder`, the latest live answer sets `dimension`; cached vectors of any other size are ignored
  and embedded again (and replaced in the cache). A size change is logged once. A server that answers two sizes
  within one call is broken, not changed: that call is None ("dimension" failure);
- a new `Embedder` (a restart, or each refit in serve: `build_engine` makes one) trusts nothing about the size
  until the server has answered once: its first call that finds every text in the cache still sends one of them
  (one request per fit), and if the answer has another size, the cached vectors are embedded again at once.
  Until then (the server down at start), the cache's most common size is used and the rest counts as missing;
- one engine fitted at the old size cannot use vectors of the new one: bot/engine/local.py decides such a call
  on its lexical evidence (logged once); its next learnt reply, or the next fit, is at the new size.
The same check catches another model of the same size: when the server's vector of the checked text is not the
cached one (cosine under `SAME_MODEL_SIMILARITY`), that embedder uses only the cached vectors it made again
itself, and those replace the old rows; a model changed behind the name while an embedder is running, at the
same size, is not noticed until the next one. A cached row that is not a finite unit vector is embedded again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import numpy as np

from bot.pii import excerpt
from bot.retry import RETRYABLE_STATUS, RetryableError, parse_retry_after, retrying

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BATCH_SIZE = 128  # texts per request; OpenAI takes up to 2,048 inputs, local servers prefer small batches
MAX_INPUT_CHARS = 8_000  # about 2,000 tokens: inside OpenAI's 8,191-token limit per input; local models
#                          truncate far earlier anyway (all-MiniLM-L6-v2 reads 256 word pieces)
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
ATTEMPTS = 3
RETRY_DEADLINE = 10.0  # seconds for all attempts of one batch; a longer Retry-After gives up at once
INITIAL_RETRY_DELAY = 0.25
COOLDOWN = 30.0  # seconds after a failure during which no request is made
# A cached vector and the server's vector of the same text closer than this are from the same model. Servers are
# not bit-for-bit repeatable (GPU kernels, batch padding): the same model gives a cosine above 0.999; another one,
# even of the same size, far less.
SAME_MODEL_SIMILARITY = 0.99


DEFAULT_PORTS = {"http": 80, "https": 443}


class EmbeddingCache(Protocol):
    """Vectors by cache key (`cache_key`: the model and its server) and text hash (hex sha256 of the UTF-8 text
    sent), as float32 bytes; a vector put again for a key and hash replaces the one stored."""

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]: ...

    def put_many(self, model: str, vectors: Mapping[str, bytes]) -> None: ...


class InMemoryEmbeddingCache:
    """A dict-backed `EmbeddingCache` for one process (the simulation has no database)."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return {h: self._vectors[model, h] for h in hashes if (model, h) in self._vectors}

    def put_many(self, model: str, vectors: Mapping[str, bytes]) -> None:
        with self._lock:
            self._vectors.update(((model, h), v) for h, v in vectors.items())

    def __len__(self) -> int:
        return len(self._vectors)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def server_of(base_url: str) -> str:
    """The server an API root names, as the cache key and the logs show it: scheme and host in lower case, the
    port only when it is not the scheme's default, the path without trailing slashes; no user name, password,
    query or fragment (they may hold credentials, and say nothing about which model answers)."""
    parts = urlsplit(base_url.strip())
    if not parts.netloc:
        return base_url.strip().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        host += f":{port}"
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def cache_key(model: str, base_url: str) -> str:
    """What the cache keeps a model's vectors under: the model name and its server ("name @ server")."""
    return f"{model} @ {server_of(base_url)}"


class _Failed(Exception):
    """One batch could not be embedded; `kind` names the failure for the once-per-kind log."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class Embedder:
    """Sentence vectors from an OpenAI-compatible embeddings endpoint; see the module docstring for the contract.

    `base_url` is the API root as the OpenAI SDK takes it (`https://api.openai.com/v1`,
    `http://localhost:11434/v1`); `/embeddings` is appended. `api_key` may be None or empty for local servers
    that need none. The injected `client` is used as is; every request carries its own bounded timeout.
    """

    def __init__(self, *, model: str, client: httpx.Client, base_url: str = DEFAULT_BASE_URL,
                 api_key: str | None = None, cache: EmbeddingCache | None = None, batch_size: int = BATCH_SIZE,
                 max_chars: int = MAX_INPUT_CHARS, attempts: int = ATTEMPTS, deadline: float = RETRY_DEADLINE,
                 cooldown: float = COOLDOWN) -> None:
        if not model:
            raise ValueError("an embeddings model name is required")
        self.model = model
        self.url = base_url.rstrip("/") + "/embeddings"
        self.server = server_of(base_url)  # shown in logs, in place of a URL that may carry a password
        self.cache_key = cache_key(model, base_url)
        self._client = client
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._cache = cache if cache is not None else InMemoryEmbeddingCache()
        self._batch_size = max(1, batch_size)
        self._max_chars = max_chars
        self._attempts = attempts
        self._deadline = deadline
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self._dimension: int | None = None  # the size of the latest live answer
        # After the check found the cache's vectors from another model of the same size: the only cached vectors
        # used are those this embedder made again (their hashes).
        self._distrusted = False
        self._remade: set[str] = set()
        self._logged: set[object] = set()
        self._quiet_until = 0.0  # monotonic time before which no request is made (after a failure)
        self.requests = 0  # HTTP requests made (attempts included), for tests and benchmarks

    def __repr__(self) -> str:  # never shows the key
        return f"Embedder(model={self.model!r}, server={self.server!r})"

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """L2-normalised float32 rows in input order, or None when any text could not be embedded."""
        sent = [self._prepare(t) for t in texts]
        hashes = [text_hash(t) if t else "" for t in sent]
        wanted = list(dict.fromkeys(h for h in hashes if h))
        cached = self._cached(wanted)
        with self._lock:
            dimension = self._dimension
            if self._distrusted:
                cached = {h: v for h, v in cached.items() if h in self._remade}
        if dimension is None and cached:  # no live answer yet: the cache's size, until the server says otherwise
            dimension = Counter(len(v) for v in cached.values()).most_common(1)[0][0]
        vectors = {h: v for h, v in cached.items() if len(v) == dimension}
        missing = [h for h in wanted if h not in vectors]
        # A new embedder checks the size once against the server, even when the cache holds every text.
        checking = not missing and bool(vectors) and self._dimension is None
        if missing or checking:
            if time.monotonic() < self._quiet_until:
                return None if missing else self._matrix(hashes, vectors, dimension)
            text_of = {h: t for h, t in zip(hashes, sent, strict=True) if h}
            fetched = dict(vectors)
            try:
                dimension = self._fetch(missing or wanted[:1], fetched, text_of, dimension)
                if checking and self._other_model(wanted[0], vectors[wanted[0]], fetched[wanted[0]]):
                    dimension = self._fetch(wanted[1:], fetched, text_of, dimension)
            except Exception as exc:  # whatever it was: still the lexical evidence, never a failed assessment
                self._failed(exc if isinstance(exc, _Failed) else _Failed("unexpected", f"{type(exc).__name__}: {exc}"))
                with self._lock:
                    unchanged = self._dimension in (None, dimension) and not self._distrusted
                # Only the check failed: the cached vectors stand, unless the server already answered otherwise.
                return self._matrix(hashes, vectors, dimension) if checking and unchanged else None
            vectors = fetched
        if dimension is None:  # no text to embed (all empty), and the model's size is not known yet
            return np.zeros((0, 0), dtype=np.float32) if not texts else None
        return self._matrix(hashes, vectors, dimension)

    # -- the pieces --------------------------------------------------------------------------------------------

    def _fetch(self, missing: list[str], vectors: dict[str, np.ndarray], text_of: Mapping[str, str],
               dimension: int | None) -> int:
        """Embed `missing` into `vectors` (and the cache), in batches; the size of the server's answer, which
        wins over `dimension` (the size used so far): vectors of another size in `vectors` are embedded again."""
        queue = list(missing)
        live: int | None = None
        while queue:
            batch, queue = queue[:self._batch_size], queue[self._batch_size:]
            rows = self._request([text_of[h] for h in batch])
            size = len(rows[0])
            if live is not None and size != live:
                raise _Failed("dimension", f"vectors of {live} and of {size} dimensions in one call: the server "
                                           "answers two sizes")
            live = size
            with self._lock:
                self._dimension = size
            if dimension is not None and size != dimension:
                self._log_resized(dimension, size)
            fresh = dict(zip(batch, rows, strict=True))
            vectors.update(fresh)
            self._store(fresh)
            with self._lock:
                if self._distrusted:
                    self._remade.update(batch)
            stale = [h for h, v in vectors.items() if len(v) != size]
            for h in stale:
                del vectors[h]
            queue += stale
            dimension = size
        return dimension

    def _other_model(self, text: str, cached: np.ndarray, live: np.ndarray) -> bool:
        """Does the server's vector `live` of a cached text (hash `text`) say the model behind the name changed?
        Then every cached vector is distrusted for the rest of this embedder's life, except those it makes again,
        which replace the old ones in the cache: the next embedder finds the cache and the server agreeing."""
        if len(cached) != len(live) or float(cached @ live) >= SAME_MODEL_SIMILARITY:
            return False
        with self._lock:
            self._distrusted = True
            self._remade.add(text)
        log.warning("embeddings (%s at %s): the server gives other vectors than the cached ones (cosine %.2f): "
                    "the model behind the name has changed; the cached vectors are embedded again as needed",
                    self.model, self.server, float(cached @ live))
        return True

    @staticmethod
    def _matrix(hashes: list[str], vectors: Mapping[str, np.ndarray], dimension: int | None) -> np.ndarray:
        out = np.zeros((len(hashes), dimension or 0), dtype=np.float32)
        for i, h in enumerate(hashes):
            if h:
                out[i] = vectors[h]
        return out

    def _prepare(self, text: str) -> str:
        text = " ".join((text or "").split())
        return text[:self._max_chars]

    def _cached(self, hashes: list[str]) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        try:
            found = self._cache.get_many(self.cache_key, hashes)
        except Exception as exc:  # a broken cache costs a request, never the evidence
            self._log_once("cache", f"the embeddings cache could not be read ({type(exc).__name__}: {exc})")
            return {}
        # Every readable unit vector, whatever its size (`embed` keeps those of the size in use); anything else
        # (a foreign or damaged row) is embedded again rather than reach the engine as NaN or a zero row.
        vectors: dict[str, np.ndarray] = {}
        for h, blob in found.items():
            if blob and not len(blob) % 4:
                vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
                if np.isfinite(vector).all() and abs(float(vector @ vector) - 1.0) < 1e-3:
                    vectors[h] = vector
        return vectors

    def _store(self, vectors: Mapping[str, np.ndarray]) -> None:
        try:
            self._cache.put_many(self.cache_key, {h: v.astype("<f4").tobytes() for h, v in vectors.items()})
        except Exception as exc:
            self._log_once("cache", f"the embeddings cache could not be written ({type(exc).__name__}: {exc})")

    def _request(self, texts: list[str]) -> list[np.ndarray]:
        """One batch, with retries; the rows normalised and checked, or _Failed."""
        started = time.monotonic()

        def worth_retrying(exc: BaseException) -> bool:
            if not isinstance(exc, RetryableError):
                return False
            left = self._deadline - (time.monotonic() - started)
            return exc.retry_after is None or exc.retry_after <= left

        try:
            for attempt in retrying(attempts=self._attempts, deadline=self._deadline, initial=INITIAL_RETRY_DELAY,
                                    cap=self._deadline, retry_on=worth_retrying):
                with attempt:
                    response = self._post(texts)
        except RetryableError as exc:
            raise _Failed(f"http {exc.status}" if exc.status else "network", str(exc)) from None
        return self._rows(response, len(texts))

    def _post(self, texts: list[str]) -> httpx.Response:
        with self._lock:
            self.requests += 1
        try:
            response = self._client.post(self.url, json={"model": self.model, "input": texts,
                                                         "encoding_format": "float"},
                                         headers=self._headers, timeout=REQUEST_TIMEOUT)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableError(f"HTTP {response.status_code}: {_error_text(response)}", status=response.status_code,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 400:
            raise _Failed(f"http {response.status_code}", f"HTTP {response.status_code}: {_error_text(response)}")
        return response

    def _rows(self, response: httpx.Response, count: int) -> list[np.ndarray]:
        try:
            data = response.json()["data"]
            if not isinstance(data, list) or len(data) != count:
                raise ValueError(f"{count} inputs, {len(data) if isinstance(data, list) else 'no'} embeddings")
            # OpenAI answers in input order with an `index` on each; some servers only keep the order.
            if all(isinstance(d, dict) and isinstance(d.get("index"), int) for d in data):
                data = sorted(data, key=lambda d: d["index"])
                if [d["index"] for d in data] != list(range(count)):
                    raise ValueError("indices are not 0..n-1")
            matrix = np.array([d["embedding"] for d in data], dtype=np.float64)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise _Failed("malformed", f"not an embeddings response ({type(exc).__name__}: {exc})") from None
        if matrix.ndim != 2 or matrix.shape[1] == 0 or not np.isfinite(matrix).all():
            raise _Failed("malformed", f"embeddings of shape {matrix.shape}, or not finite numbers")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise _Failed("malformed", "an all-zero embedding")
        return list((matrix / norms).astype(np.float32))

    def _failed(self, failure: _Failed) -> None:
        with self._lock:
            self._quiet_until = time.monotonic() + self._cooldown
        self._log_once(failure.kind, str(failure))

    def _log_once(self, kind: str, detail: str) -> None:
        with self._lock:
            if kind in self._logged:
                return
            self._logged.add(kind)
        log.warning("embeddings (%s at %s) unavailable: %s; deciding on lexical evidence (logged once per kind "
                    "of failure)", self.model, self.server, detail)

    def _log_resized(self, before: int, after: int) -> None:
        with self._lock:
            if ("resized", before, after) in self._logged:
                return
            self._logged.add(("resized", before, after))
        log.warning("embeddings (%s at %s) changed size from %d to %d dimensions: the model behind the name has "
                    "changed; the server's size is used and vectors of the old size are embedded again (an engine "
                    "fitted at the old size decides on lexical evidence until its next fit)",
                    self.model, self.server, before, after)


def _error_text(response: httpx.Response) -> str:
    """The server's own error message, short (OpenAI: {"error": {"message": …}}; others: text)."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:200]
    except ValueError:
        pass
    return excerpt(response.text, 200) or response.reason_phrase
