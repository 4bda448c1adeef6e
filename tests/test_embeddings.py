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
from bot.engine.embeddings import Embedder, InMemoryEmbeddingCache, cache_key, text_hash
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
    assert fake.inputs[1:] == [[PARCEL]]  # one text, once, to check the server's size against the cache's
    assert np.array_equal(again, first[::-1])
    embedder(fake, client, cache=cache).embed([PASSWORD, PASSWORD_AGAIN])
    assert fake.inputs[2:] == [[PASSWORD_AGAIN]]  # only the new text


def test_another_model_has_its_own_cache_entries(fake, client):
    cache = InMemoryEmbeddingCache()
    one = embedder(fake, client, cache=cache).embed([PASSWORD])
    other = embedder(fake, client, cache=cache, model="other-model").embed([PASSWORD])
    assert len(fake.requests) == 2 and len(cache) == 2
    assert not np.allclose(one, other)
    assert set(cache.get_many(cache_key(MODEL, fake.base_url), [text_hash(PASSWORD)])) == {text_hash(PASSWORD)}


def test_the_sqlite_cache_survives_a_new_store_on_the_same_file(fake, client, tmp_path):
    path = tmp_path / "seam.db"
    store = Store(path)
    first = embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD, PARCEL])
    store.close()

    reopened = Store(path)
    again = embedder(fake, client, cache=reopened.embedding_cache).embed([PASSWORD, PARCEL])
    assert fake.inputs[1:] == [[PASSWORD]]  # the size checked with one text; nothing else embedded again
    assert np.array_equal(again, first)
    assert reopened.cached_embeddings("other-model", [text_hash(PASSWORD)]) == {}


def test_the_store_looks_up_many_at_once_and_a_hash_put_again_takes_the_new_vector(tmp_path):
    store = Store(tmp_path / "seam.db")
    vectors = {f"{i:064x}": np.full(4, i, dtype="<f4").tobytes() for i in range(1200)}
    store.cache_embeddings("m", vectors)
    assert store.cached_embeddings("m", [*vectors, "missing"]) == vectors
    assert store.embedding_cache.get_many("m", [f"{5:064x}"]) == {f"{5:064x}": vectors[f"{5:064x}"]}
    with store.db.conn as db:
        db.execute("update embedding_cache set created_at = '2020-01-01T00:00:00Z'")
    store.cache_embeddings("m", {f"{5:064x}": np.full(2, 7, dtype="<f4").tobytes()})  # embedded again, at 2
    assert store.cached_embeddings("m", [f"{5:064x}"]) == {f"{5:064x}": np.full(2, 7, dtype="<f4").tobytes()}
    made = dict(store.db.execute("select text_hash, created_at from embedding_cache where text_hash in (?, ?)",
                                 [f"{5:064x}", f"{6:064x}"]).fetchall())
    assert made[f"{6:064x}"] == "2020-01-01T00:00:00Z" < made[f"{5:064x}"], "its age counts from when it was remade"


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


# -- the cache key: the model and the server -----------------------------------------------------------------------

def test_the_same_model_name_on_another_server_has_its_own_cache_entries(client):
    cache = InMemoryEmbeddingCache()
    with FakeEmbeddings() as ollama, FakeEmbeddings(weights="another build") as vllm:
        before = embedder(ollama, client, cache=cache).embed([PASSWORD])
        after = embedder(vllm, client, cache=cache).embed([PASSWORD])
        assert len(vllm.requests) == 1, "the other server's vector was not taken from the cache"
        assert np.allclose(after[0], fake_vector(PASSWORD, model=MODEL, weights="another build"), atol=1e-6)
        assert not np.allclose(before, after)


def test_the_cache_key_is_the_model_and_the_server_without_credentials():
    key = cache_key("nomic-embed-text", "HTTP://user:s3cret@LocalHost:80/v1/?api-key=k2#x")
    assert key == cache_key("nomic-embed-text", "http://localhost/v1") == "nomic-embed-text @ http://localhost/v1"
    assert "s3cret" not in key and "k2" not in key
    assert cache_key("m", "https://api.openai.com:443/v1") == "m @ https://api.openai.com/v1"
    assert cache_key("m", "http://[::1]:11434/v1") == "m @ http://[::1]:11434/v1"
    assert cache_key("m", "http://localhost:11434/v1") != cache_key("m", "http://localhost:8000/v1")
    assert cache_key("m", "http://localhost:8000/v1") != cache_key("m", "http://localhost:8000/openai/v1")
    emb = Embedder(model="m", base_url="https://bob:pw@gateway.local/v1", client=None)  # type: ignore[arg-type]
    assert emb.cache_key == "m @ https://gateway.local/v1" and "pw" not in repr(emb) and "pw" not in emb.server


def test_rows_cached_under_the_bare_model_name_are_never_read(fake, client, tmp_path):
    store = Store(tmp_path / "seam.db")
    wrong = fake_vector(PARCEL, model=MODEL)  # as an older Seam stored it: by model name only
    store.cache_embeddings(MODEL, {text_hash(PASSWORD): wrong.astype("<f4").tobytes()})
    vectors = embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD])
    assert fake.inputs == [[PASSWORD]]
    assert np.allclose(vectors[0], fake_vector(PASSWORD, model=MODEL), atol=1e-6)


# -- a change of size under the same name: the server's answer wins ---------------------------------------------------

def test_a_server_that_changes_size_is_followed_and_the_old_vectors_embedded_again(fake, client, caplog):
    emb = embedder(fake, client, cooldown=0)
    assert emb.embed([PASSWORD]).shape == (1, 64) and emb.dimension == 64
    fake.dimensions = 32
    with caplog.at_level(logging.WARNING):
        assert emb.embed([PARCEL]).shape == (1, 32)
        again = emb.embed([PASSWORD, PARCEL])
    assert again.shape == (2, 32) and emb.dimension == 32
    assert np.allclose(again[0], fake_vector(PASSWORD, model=MODEL, dimensions=32), atol=1e-6)
    assert fake.inputs[1:] == [[PARCEL], [PASSWORD]]
    [line] = warnings_from(caplog)
    assert "64 to 32 dimensions" in line


def test_after_a_restart_the_server_not_the_cache_sets_the_size(fake, client, tmp_path):
    path = tmp_path / "seam.db"
    store = Store(path)
    embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD, PARCEL])
    store.close()
    fake.dimensions = 32  # the model behind the name changed while Seam was down

    store = Store(path)
    vectors = embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD, PARCEL])
    assert vectors is not None and vectors.shape == (2, 32)
    assert np.allclose(vectors[1], fake_vector(PARCEL, model=MODEL, dimensions=32), atol=1e-6)
    requests = len(fake.requests)
    store.close()

    store = Store(path)  # the cache now holds the new size: one request confirms it, nothing is embedded again
    assert embedder(fake, client, cache=store.embedding_cache).embed([PASSWORD, PARCEL]).shape == (2, 32)
    assert len(fake.requests) == requests + 1 and len(fake.inputs[-1]) == 1


def test_cached_vectors_of_two_sizes_come_back_at_the_size_the_server_answers(fake, client):
    cache = InMemoryEmbeddingCache()
    emb = embedder(fake, client, cache=cache)
    key = emb.cache_key
    cache.put_many(key, {text_hash(PASSWORD): fake_vector(PASSWORD, model=MODEL, dimensions=32).tobytes(),
                         text_hash(PARCEL): fake_vector(PARCEL, model=MODEL).tobytes(),
                         text_hash(PASSWORD_AGAIN): fake_vector(PASSWORD_AGAIN, model=MODEL).tobytes()})
    vectors = emb.embed([PASSWORD, PARCEL, PASSWORD_AGAIN])
    assert vectors.shape == (3, 64)
    assert np.allclose(vectors[0], fake_vector(PASSWORD, model=MODEL), atol=1e-6)


def test_with_the_server_down_a_new_embedder_still_serves_what_is_cached(fake, client):
    cache = InMemoryEmbeddingCache()
    first = embedder(fake, client, cache=cache).embed([PASSWORD, PARCEL])
    fake.fail(status=503, times=10)
    again = embedder(fake, client, cache=cache, attempts=1).embed([PASSWORD, PARCEL])
    assert np.array_equal(again, first)


def test_a_size_change_found_by_the_check_then_a_failure_gives_none_not_the_old_vectors(fake, client):
    cache = InMemoryEmbeddingCache()
    embedder(fake, client, cache=cache).embed([PASSWORD, PARCEL])
    fake.fail(status=200, body={"object": "list", "data": [{"index": 0, "embedding": [0.6, 0.8]}]})
    fake.fail(status=503)  # then the server is gone before the rest is embedded again
    assert embedder(fake, client, cache=cache, attempts=1).embed([PASSWORD, PARCEL]) is None


def test_another_model_of_the_same_size_behind_the_name_is_found_by_the_check(fake, client, caplog):
    cache = InMemoryEmbeddingCache()
    embedder(fake, client, cache=cache).embed([PASSWORD, PARCEL, PASSWORD_AGAIN])
    fake.weights = "retrained"  # same name, same server, same size: other vectors
    emb = embedder(fake, client, cache=cache)
    with caplog.at_level(logging.WARNING):
        vectors = emb.embed([PASSWORD, PARCEL])
    for got, text in zip(vectors, [PASSWORD, PARCEL], strict=True):
        assert np.allclose(got, fake_vector(text, model=MODEL, weights="retrained"), atol=1e-6)
    assert "other vectors" in warnings_from(caplog)[0]
    requests = len(fake.requests)
    assert np.array_equal(emb.embed([PARCEL, PASSWORD]), vectors[::-1])  # embedded again once, then trusted
    assert len(fake.requests) == requests
    again = emb.embed([PASSWORD_AGAIN])  # an old row this embedder has not made again
    assert np.allclose(again[0], fake_vector(PASSWORD_AGAIN, model=MODEL, weights="retrained"), atol=1e-6)

    later = embedder(fake, client, cache=cache)  # the next fit: the cache agrees with the server again
    assert np.allclose(later.embed([PASSWORD, PARCEL, PASSWORD_AGAIN]), np.vstack([vectors, again]), atol=1e-6)
    assert len(fake.inputs[-1]) == 1


def test_a_cached_vector_that_is_not_a_unit_vector_of_numbers_is_embedded_again(fake, client):
    cache = InMemoryEmbeddingCache()
    emb = embedder(fake, client, cache=cache)
    emb.embed([PARCEL])
    cache.put_many(emb.cache_key, {text_hash(PASSWORD): np.full(64, np.nan, dtype="<f4").tobytes(),
                                   text_hash(PASSWORD_AGAIN): np.zeros(64, dtype="<f4").tobytes()})
    vectors = emb.embed([PASSWORD, PASSWORD_AGAIN])
    assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert fake.inputs[-1] == [PASSWORD, PASSWORD_AGAIN]


def test_a_server_answering_two_sizes_in_one_call_gives_none(fake, client, caplog):
    emb = embedder(fake, client, batch_size=1, cooldown=0)
    fake.fail(status=200, body={"object": "list", "data": [{"index": 0, "embedding": [0.6, 0.8]}]})
    with caplog.at_level(logging.WARNING):
        assert emb.embed([PASSWORD, PARCEL]) is None  # the first batch at 2 dimensions, the second at 64
    assert "two sizes" in warnings_from(caplog)[0]


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


# -- the engine when the size changes after its fit -----------------------------------------------------------------

def _history() -> list:
    from pathlib import Path

    from bot.models import read_tickets

    return read_tickets(Path(__file__).resolve().parents[1] / "examples" / "history.jsonl", limit=120)[0]


def test_a_size_change_after_the_fit_falls_back_to_lexical_and_the_next_fit_takes_the_new_size(fake, client,
                                                                                                caplog):
    from bot.engine.local import LocalEngine
    from bot.models import Message, Ticket

    cache, history = InMemoryEmbeddingCache(), _history()
    engine = LocalEngine(history=history, embedder=embedder(fake, client, cache=cache, cooldown=0))
    assert engine._index.semantic
    question = Ticket(id="q", messages=(Message("customer", history[3].customer_text() + " Thanks!"),))
    fake.dimensions = 32
    with caplog.at_level(logging.WARNING):
        assessed = engine.assess(question)
        assert engine.assess_many([question, question]) == [assessed, assessed]
        assert engine.retrieve(question) == engine._lexical.retrieve(question)
    assert assessed == engine._lexical.assess(question)
    size_lines = [r.getMessage() for r in caplog.records if r.name == "bot.engine.local" and "size" in r.getMessage()]
    assert len(size_lines) == 1, size_lines
    engine.learn("Can I pay for my order with a voucher?", "vouchers", "Yes: enter the code at checkout.")
    assert engine._index.dimension == 32, "a learnt reply rebuilds the index at the new size"
    assert engine._vectors(engine._index, [question.customer_text()]).shape == (1, 32)

    refitted = LocalEngine(history=history, embedder=embedder(fake, client, cache=cache, cooldown=0))
    assert refitted._index.semantic and refitted._index.matrix.shape[1] == refitted._lexical._index.matrix.shape[1] + 32
    vectors = refitted._vectors(refitted._index, [question.customer_text()])
    assert vectors is not None and vectors.shape == (1, 32), "assessed on the new size, not by the lexical twin"
    assert refitted.assess(question).answer_source is not None


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
