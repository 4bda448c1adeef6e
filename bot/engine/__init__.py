"""The engines that read a ticket and propose an answer with a confidence (see base.py), and `build_engine`,
which picks one from the settings. The heavy parts (scikit-learn, the OpenAI SDK) load only when an engine is
built, so commands that need no engine start fast. With `EMBEDDINGS_MODEL` set, `build_embedder` gives the
local engine sentence embeddings as extra evidence (embeddings.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.engine.base import Engine, Verdict
    from bot.engine.embeddings import Embedder, EmbeddingCache
    from bot.engine.knowledge import Article
    from bot.models import Ticket

log = logging.getLogger(__name__)


def build_embedder(settings: Settings, *, cache: EmbeddingCache | None = None) -> Embedder | None:
    """The sentence embedder `EMBEDDINGS_MODEL` asks for (None when unset), at `EMBEDDINGS_BASE_URL` with
    `EMBEDDINGS_API_KEY`, caching in `cache` (serve: `Store.embedding_cache`; default: in memory, for the
    offline simulation), under the model's name and server (`cache_key`). Nothing is requested here: a server
    that is down shows at the first `embed`, which then returns None and the engine keeps to lexical evidence.
    Each fit gets a new embedder, which checks the size of the server's vectors against the cache's once."""
    if not settings.embeddings_model:
        return None
    import httpx

    from bot.engine.embeddings import Embedder, InMemoryEmbeddingCache, server_of

    log.info("embeddings: model %s at %s", settings.embeddings_model, server_of(settings.embeddings_base_url))
    return Embedder(model=settings.embeddings_model, base_url=settings.embeddings_base_url,
                    api_key=settings.embeddings_api_key, client=httpx.Client(),
                    cache=cache if cache is not None else InMemoryEmbeddingCache())


def build_engine(settings: Settings, *, articles: Sequence[Article], history: Sequence[Ticket],
                 embedding_cache: EmbeddingCache | None = None, processes: bool = False,
                 feedback: Callable[[], Sequence[Verdict]] | None = None,
                 observer: Callable[[str | None], None] | None = None) -> Engine:
    """The engine the configuration asks for: OpenAI's when OPENAI_API_KEY is set (grounded in the local
    engine's retrieval), else the local one.

    With EMBEDDINGS_MODEL set the local engine gets `embedder=` (see `build_embedder`; `embedding_cache` is
    where its vectors are kept, in memory by default). What the local engine may rely on (the full contract is
    in bot/engine/embeddings.py): `embedder.embed(texts)` returns a float32 array of shape (len(texts), d), row
    i for texts[i], each row L2-normalised (dot product = cosine; an empty text gets a zero row), or None when
    anything failed — then that call's evidence is lexical only. It never raises, is thread-safe, and caches
    by text, so embedding every document at each fit and every ticket at each assessment costs one request per
    new text; after a failure it answers None at once (no request) for `COOLDOWN` seconds. `embedder.model`
    and `embedder.dimension` (the size of the server's latest answer, None before one) describe the vectors;
    the size may change between calls (the model behind the name changed), never within one.

    `processes`: the local engine fits in forked processes (the offline simulation only; see LocalEngine).
    `feedback`: the verdicts on recent automatic answers (serve: bot.flows.quality.verdicts), for the local
    engine's share of uncovered questions. `observer`: told by the OpenAI engine whether its server refused Seam's
    settings (the key, the model) on each call it answered (serve: bot.flows.health)."""
    from bot.engine.local import LocalEngine

    local = LocalEngine(articles=articles, history=history,
                        embedder=build_embedder(settings, cache=embedding_cache), processes=processes,
                        feedback=feedback)
    if settings.openai_api_key:
        from bot.engine.openai import OpenAIEngine

        log.info("engine: OpenAI model %s at %s", settings.openai_model, settings.openai_base_url or "the default URL")
        return OpenAIEngine.from_settings(settings, retriever=local, observer=observer)
    log.info("engine: local (%s)", "calibrated on history" if local.calibrated else "uncalibrated: too little history")
    return local
