"""Optional semantic evidence (bot/engine/embeddings.py): the `Embedder` against a fake OpenAI-compatible
`/v1/embeddings` server — shapes, normalisation, batching, the in-memory and SQLite caches, every failure giving
None and one log line per kind, `Retry-After` — the settings that turn it on, and `simulate` with it set.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from bot.config import DEFAULT_OPENAI_BASE_URL, load_settings
from bot.engine.embeddings import Embedder, InMemoryEmbeddingCache, text_hash
from bot.store import Store
from tests.support.fakes import FakeEmbeddings
from tests.support.fakes.embeddings_api import fake_vector
from tests.support.jsonl import read_jsonl, row, write_jsonl
from tests.support.knowledge import write_knowledge

MODEL = "test-embed-1"
PASSWORD = "I forgot my password and cannot sign in"
PASSWORD_AGAIN = "forgot password, cannot sign in to my account"
PARCEL = "Where is my parcel? It has not arrived"


@pytest.fixture
def fake():
    with FakeEmbeddings() as server:
        yield server


@pytest.fixture
def client():
    with httpx.Client() as http:
        yield http


def embedder(fake: FakeEmbeddings, client: httpx.Client, **options) -> Embedder:
    options.setdefault("model", MODEL)
    options.setdefault("base_url", fake.base_url)
    return Embedder(client=client, **options)


def warnings_from(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "bot.engine.embeddings" and r.levelno >= logging.WARNING]


# -- shapes, order, normalisation ----------------------------------------------------------------------------------

def test_rows_are_normalised_float32_in_input_order(fake, client):
    vectors = embedder(fake, client).embed([PASSWORD, PARCEL, PASSWORD_AGAIN])
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    for got, text in zip(vectors, [PASSWORD, PARCEL, PASSWORD_AGAIN], strict=True):
        assert np.allclose(got, fake_vector(text, model=MODEL), atol=1e-6)
    similarity = vectors @ vectors.T
    assert similarity[0, 2] > similarity[0, 1]  # the paraphrase is closer than the other question
    [request] = fake.requests
    assert request == {"model": MODEL, "input": [PASSWORD, PARCEL, PASSWORD_AGAIN], "encoding_format": "float"}


def test_vectors_a_server_does_not_normalise_are_normalised_and_put_in_index_order(fake, client):
    fake.fail(status=200, body={"object": "list", "model": MODEL, "data": [
        {"object": "embedding", "index": 1, "embedding": [0.0, 4.0, 0.0]},
        {"object": "embedding", "index": 0, "embedding": [3.0, 0.0, 4.0]}]})
    vectors = embedder(fake, client).embed(["first", "second"])
    assert np.allclose(vectors, [[0.6, 0.0, 0.8], [0.0, 1.0, 0.0]])


def test_empty_texts_get_zero_rows_and_are_never_sent(fake, client):
    vectors = embedder(fake, client).embed([PASSWORD, "", "   \n"])
    assert vectors.shape == (3, 64)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0) and not vectors[1:].any()
    assert fake.inputs == [[PASSWORD]]


def test_no_texts_gives_an_empty_array_without_a_request(fake, client):
    assert embedder(fake, client).embed([]).shape[0] == 0
    assert fake.requests == []


def test_texts_are_sent_in_batches_each_distinct_text_once(fake, client):
    texts = [f"question number {i} about my order" for i in range(300)]
    vectors = embedder(fake, client, batch_size=128).embed(texts + texts[:10])
    assert [len(batch) for batch in fake.inputs] == [128, 128, 44]
    assert vectors.shape == (310, 64)
    assert np.array_equal(vectors[300:], vectors[:10])
    assert np.allclose(vectors[299], fake_vector(texts[299], model=MODEL), atol=1e-6)


def test_long_texts_are_clipped_and_whitespace_collapsed(fake, client):
    embedder(fake, client, max_chars=50).embed(["word " * 100 + "\n\n tail"])
    [[sent]] = fake.inputs
    assert len(sent) == 50 and "  " not in sent and "\n" not in sent


def test_the_key_is_sent_as_a_bearer_token_and_never_shown(client):
    with FakeEmbeddings(api_key="sk-embed-secret-123") as fake:
        assert embedder(fake, client).embed([PASSWORD]) is None  # no key: 401
        good = embedder(fake, client, api_key="sk-embed-secret-123")
        assert good.embed([PASSWORD]).shape == (1, 64)
        assert fake.calls[-1].headers["authorization"] == "Bearer sk-embed-secret-123"
        assert "sk-embed" not in repr(good)


def test_a_local_server_gets_no_authorization_header(fake, client):
    embedder(fake, client, api_key="").embed([PASSWORD])
    assert "authorization" not in fake.calls[0].headers


# -- the cache ------------------------------------------------------------------------------------------------------

def test_a_second_call_is_answered_from_the_cache(fake, client):
    cache = InMemoryEmbeddingCache()
    first = embedder(fake, client, cache=cache).embed([PASSWORD, PARCEL])
    again = embedder(fake, client, cache=cache).embed([PARCEL, PASSWORD])  # a new embedder, the same cache
    assert len(fake.requests) == 1
    assert np.array_equal(again, first[::-1])
    embedder(fake, client, cache=cache).embed([PASSWORD, PASSWORD_AGAIN])
    assert fake.inputs[1:] == [[PASSWORD_AGAIN]]  # only the new text


def test_another_model_has_its_own_cache_entries(fake, client):
    cache = InMemoryEmbeddingCache()
    one = embedder(fake, client, cache=cache).embed([PASSWORD])
    other = embedder(fake, client, cache=cache, model="other-model").embed([PASSWORD])
    assert len(fake.requests) == 2 and len(cache) == 2
    assert not np.allclose(one, other)
    assert set(cache.get_many(MODEL, [text_hash(PASSWORD)])) == {text_hash(PASSWORD)}


def test_the_sqlite_cache_survives_a_new_store_on_the_same_file(fake, client, tmp_path):
    path = tmp_path / "seam.db"
    store = Store(path)
    first = embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD, PARCEL])
    store.close()

    reopened = Store(path)
    again = embedder(fake, client, cache=reopened.embedding_cache).embed([PASSWORD, PARCEL])
    assert len(fake.requests) == 1
    assert np.array_equal(again, first)
    assert reopened.cached_embeddings("other-model", [text_hash(PASSWORD)]) == {}


def test_the_store_keeps_the_first_vector_of_a_hash_and_looks_up_many_at_once(tmp_path):
    store = Store(tmp_path / "seam.db")
    vectors = {f"{i:064x}": np.full(4, i, dtype="<f4").tobytes() for i in range(1200)}
    store.cache_embeddings("m", vectors)
    store.cache_embeddings("m", {f"{0:064x}": b"\x00" * 16})  # already there: kept as it was
    found = store.cached_embeddings("m", [*vectors, "missing"])
    assert found == vectors
    assert store.embedding_cache.get_many("m", [f"{5:064x}"]) == {f"{5:064x}": vectors[f"{5:064x}"]}


def test_a_broken_cache_costs_a_request_not_the_evidence(fake, client, caplog):
    class Broken:
        def get_many(self, model, hashes):
            raise OSError("disk on fire")

        def put_many(self, model, vectors):
            raise OSError("disk on fire")

    with caplog.at_level(logging.WARNING):
        vectors = embedder(fake, client, cache=Broken()).embed([PASSWORD])
    assert vectors.shape == (1, 64)
    assert len(warnings_from(caplog)) == 1 and "cache" in warnings_from(caplog)[0]


# -- failures: None, logged once per kind, the engine keeps lexical evidence ----------------------------------------

def test_a_failing_server_gives_none_and_one_log_line(fake, client, caplog):
    fake.fail(status=500, times=100)
    emb = embedder(fake, client, attempts=2, cooldown=0)
    with caplog.at_level(logging.WARNING):
        assert emb.embed([PASSWORD]) is None
        assert emb.embed([PARCEL]) is None
    assert len(fake.requests) == 4  # two attempts a call
    [line] = warnings_from(caplog)
    assert "HTTP 500" in line and "lexical" in line


def test_each_kind_of_failure_is_logged_once(fake, client, caplog):
    emb = embedder(fake, client, attempts=1, cooldown=0)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            fake.fail(status=400)
            assert emb.embed([PASSWORD]) is None
        for _ in range(2):
            fake.fail(status=200, body="this is not JSON")
            assert emb.embed([PASSWORD]) is None
    lines = warnings_from(caplog)
    assert len(lines) == 2 and "HTTP 400" in lines[0] and "not an embeddings response" in lines[1]


def test_client_errors_are_not_retried(fake, client):
    fake.fail(status=404)
    assert embedder(fake, client).embed([PASSWORD]) is None
    assert len(fake.requests) == 1


def test_an_unreachable_server_gives_none(client, caplog):
    with FakeEmbeddings() as gone:
        url = gone.base_url
    with caplog.at_level(logging.WARNING):
        assert Embedder(model=MODEL, base_url=url, client=client, attempts=2).embed([PASSWORD]) is None
    assert len(warnings_from(caplog)) == 1


def test_it_never_raises_whatever_the_client_does(caplog):
    class Exploding:
        def post(self, *args, **kwargs):
            raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING):
        assert Embedder(model=MODEL, client=Exploding()).embed([PASSWORD]) is None  # type: ignore[arg-type]
    assert "RuntimeError: boom" in warnings_from(caplog)[0]


def test_after_a_failure_no_request_is_made_for_a_while_but_cached_texts_still_come_back(fake, client):
    emb = embedder(fake, client, cooldown=60)
    cached = emb.embed([PASSWORD])
    fake.fail(status=400)
    assert emb.embed([PARCEL]) is None
    requests = len(fake.requests)
    assert emb.embed([PARCEL]) is None
    assert np.array_equal(emb.embed([PASSWORD]), cached)
    assert len(fake.requests) == requests


@pytest.mark.parametrize("body", [
    "not json at all",
    {"object": "list", "data": "nope"},
    {"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}]},  # one vector for two texts
    {"object": "list", "data": [{"index": 0, "embedding": [0.1, "x"]}, {"index": 1, "embedding": [0.1, 0.2]}]},
    {"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}, {"index": 1, "embedding": [0.1]}]},
    {"object": "list", "data": [{"index": 0, "embedding": [0.0, 0.0]}, {"index": 1, "embedding": [0.1, 0.2]}]},
    {"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}, {"index": 0, "embedding": [0.1, 0.2]}]},
    {"error": "a proxy said 200 but meant no"},
], ids=["text", "data-not-a-list", "too-few", "not-numbers", "ragged", "zero", "duplicate-index", "no-data"])
def test_a_malformed_answer_gives_none(fake, client, body):
    fake.fail(status=200, body=body)
    assert embedder(fake, client).embed([PASSWORD, PARCEL]) is None


def test_vectors_of_another_size_than_before_give_none(fake, client, caplog):
    emb = embedder(fake, client, cooldown=0)
    assert emb.embed([PASSWORD]).shape == (1, 64) and emb.dimension == 64
    fake.dimensions = 32
    with caplog.at_level(logging.WARNING):
        assert emb.embed([PARCEL]) is None
    assert "32 dimensions where 64 were expected" in warnings_from(caplog)[0]


def test_retry_after_is_honoured(fake, client):
    fake.fail(status=429, headers={"Retry-After": "1"})
    vectors = embedder(fake, client).embed([PASSWORD])
    assert vectors.shape == (1, 64)
    first, second = fake.calls_to("embeddings")
    assert first.status == 429 and second.ok
    assert second.received_at - first.received_at >= 0.95


def test_a_retry_after_past_the_deadline_gives_up_at_once(fake, client):
    fake.fail(status=503, headers={"Retry-After": "120"})
    started = time.monotonic()
    assert embedder(fake, client, deadline=10).embed([PASSWORD]) is None
    assert time.monotonic() - started < 2 and len(fake.requests) == 1


def test_server_errors_are_retried_within_the_deadline(fake, client):
    fake.fail(status=502, times=2)
    assert embedder(fake, client, attempts=3).embed([PASSWORD]).shape == (1, 64)
    assert [c.status for c in fake.calls_to("embeddings")] == [502, 502, 200]


def test_concurrent_callers_get_the_same_vectors(fake, client):
    emb = embedder(fake, client)
    texts = [f"thread question {i}" for i in range(40)]
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(emb.embed(texts))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(np.array_equal(r, results[0]) for r in results)


# -- settings and wiring --------------------------------------------------------------------------------------------

def test_embeddings_are_off_unless_a_model_is_set(tmp_path):
    from bot.engine import build_embedder

    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.embeddings_model is None and build_embedder(settings) is None
    assert settings.embeddings_base_url == DEFAULT_OPENAI_BASE_URL and settings.embeddings_api_key is None


def test_embeddings_default_to_the_openai_url_and_key(tmp_path):
    settings = load_settings(env={"EMBEDDINGS_MODEL": "text-embedding-3-small", "OPENAI_API_KEY": "sk-o",
                                  "OPENAI_BASE_URL": "http://gateway.local/v1"}, cwd=tmp_path)
    assert (settings.embeddings_model, settings.embeddings_base_url, settings.embeddings_api_key) == (
        "text-embedding-3-small", "http://gateway.local/v1", "sk-o")


def test_embeddings_settings_of_their_own_win_and_an_empty_key_sends_none(tmp_path):
    env = {"EMBEDDINGS_MODEL": "nomic-embed-text", "EMBEDDINGS_BASE_URL": "http://localhost:11434/v1",
           "EMBEDDINGS_API_KEY": "", "OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "http://gateway.local/v1"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert (settings.embeddings_base_url, settings.embeddings_api_key) == ("http://localhost:11434/v1", None)
    assert load_settings(env={**env, "EMBEDDINGS_API_KEY": "sk-e"}, cwd=tmp_path).embeddings_api_key == "sk-e"


def test_build_engine_hands_the_embedder_to_a_local_engine_that_takes_one(monkeypatch, tmp_path, fake):
    import bot.engine.local
    from bot.engine import build_engine

    seen = {}

    class Recording:
        calibrated = False

        def __init__(self, *, articles=(), history=(), embedder=None, **others) -> None:
            seen["embedder"] = embedder

    monkeypatch.setattr(bot.engine.local, "LocalEngine", Recording)
    cache = InMemoryEmbeddingCache()
    settings = load_settings(env={"EMBEDDINGS_MODEL": MODEL, "EMBEDDINGS_BASE_URL": fake.base_url}, cwd=tmp_path)
    build_engine(settings, articles=(), history=(), embedding_cache=cache)
    emb = seen["embedder"]
    assert isinstance(emb, Embedder) and emb.model == MODEL and emb.url == fake.base_url + "/embeddings"
    emb.embed([PASSWORD])
    assert len(cache) == 1

    build_engine(load_settings(env={}, cwd=tmp_path), articles=(), history=())
    assert seen["embedder"] is None


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "ZENDESK_", "EMBEDDINGS_")) and k != "KNOWLEDGE_PATH"}
    return {**env, **extra}


def test_simulate_with_embeddings_set_runs_end_to_end(fake, tmp_path):
    knowledge = write_knowledge(tmp_path / "knowledge")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        row("a", "I forgot my password and cannot sign in, how do I reset it?", answer_id="reset-password"),
        row("b", "How long does shipping take abroad?", answer_id="shipping-times"),
        row("c", "kjdshf wqeoiru"),
    ])
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out),
         "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=_clean_env(EMBEDDINGS_MODEL=MODEL, EMBEDDINGS_BASE_URL=fake.base_url, EMBEDDINGS_API_KEY=""))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert [d["id"] for d in read_jsonl(out / "decisions.jsonl")] == ["a", "b", "c"]
    assert json.loads(result.stdout)["tickets"] == 3
    from bot.engine.local import LocalEngine

    if "embedder" in inspect.signature(LocalEngine).parameters:  # the engine uses the evidence: it asked
        assert fake.requests and all(r["model"] == MODEL for r in fake.requests)
    else:
        assert "does not use them yet" in result.stderr


def test_simulate_with_an_unreachable_embeddings_server_still_decides(tmp_path):
    with FakeEmbeddings() as gone:
        url = gone.base_url
    knowledge = write_knowledge(tmp_path / "knowledge")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", "How long does shipping take abroad?")])
    result = subprocess.run(
        [sys.executable, "-m", "bot", "simulate", str(tickets), "--knowledge", str(knowledge), "--out",
         str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=_clean_env(EMBEDDINGS_MODEL=MODEL, EMBEDDINGS_BASE_URL=url))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(read_jsonl(tmp_path / "out" / "decisions.jsonl")) == 1
    assert result.stderr.count("embeddings (") <= 1  # at most one line for the failure, whatever the calls
