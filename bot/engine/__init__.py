"""The engines that read a ticket and propose an answer with a confidence (see base.py), and `build_engine`,
which picks one from the settings. The heavy parts (scikit-learn, the OpenAI SDK) load only when an engine is
built, so commands that need no engine start fast."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.engine.base import Engine
    from bot.engine.knowledge import Article
    from bot.models import Ticket

log = logging.getLogger(__name__)


def build_engine(settings: Settings, *, articles: Sequence[Article], history: Sequence[Ticket]) -> Engine:
    """The engine the configuration asks for: OpenAI's when OPENAI_API_KEY is set (grounded in the local
    engine's retrieval), else the local one."""
    from bot.engine.local import LocalEngine

    local = LocalEngine(articles=articles, history=history)
    if settings.openai_api_key:
        from bot.engine.openai import OpenAIEngine

        log.info("engine: OpenAI model %s at %s", settings.openai_model, settings.openai_base_url or "the default URL")
        return OpenAIEngine.from_settings(settings, retriever=local)
    log.info("engine: local (%s)", "calibrated on history" if local.calibrated else "uncalibrated: too little history")
    return local
