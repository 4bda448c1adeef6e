"""The local AI engine: retrieval over knowledge articles and resolved past tickets, with no network.

It answers with the article (or the macro a person reused on similar past tickets) that the ticket most looks
like, and scores how sure it is from two things a reviewer can check in the evidence: how close the nearest
match is, and how strongly the nearest matches agree on one answer. TF-IDF over words and character n-grams
(scikit-learn) keeps it fast and tolerant of typos. The calibrated model that replaces this score is a later
issue; `Engine` is the interface both implement.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize

from bot.knowledge import Article
from bot.models import Assessment, Ticket

# Similarity at which a match counts as fully relevant, and the floor below which there is no answer at all.
# Set from the bundled sample's sweep (docs/benchmarks.md): paraphrases of one question land above 0.55.
FULL_MATCH_SIMILARITY = 0.55
MIN_RELEVANCE = 0.12
NEIGHBOURS = 10
# Only neighbours at least this fraction as similar as the nearest one compete for the vote: distant matches
# share vocabulary with everything and would otherwise dilute agreement.
COMPETITIVE_BAND = 0.6
SUMMARY_CHARS = 280
HANDLED_BY_PERSON = ""  # the label of past tickets a person answered without reusing a macro or article


class Engine(Protocol):
    def assess(self, ticket: Ticket) -> Assessment: ...


@dataclass(frozen=True)
class Passage:
    """A retrieved answer: the article or past reply it comes from, its text, and how close it is."""

    source: str
    text: str
    similarity: float


@dataclass(frozen=True)
class _Doc:
    label: str  # the answer source: article id or the answer_id a person reused
    text: str  # what is matched against
    answer: str  # what would be sent


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _passages(article: Article) -> list[str]:
    """What an article is matched on: its title, each paragraph under the title, and the whole. Short passages
    match short questions far better than a long article does."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", article.body) if len(p.strip()) > 40]
    return [article.title, *(f"{article.title}\n{p}" for p in paragraphs), f"{article.title}\n{article.body}"]


def summarize(ticket: Ticket, *, limit: int = SUMMARY_CHARS) -> str:
    """An extractive summary: what the customer first asked and what they say now, cut to `limit`."""
    customer = ticket.customer_messages
    if not customer:
        return _clip(ticket.subject, limit)
    first = " ".join(_sentences(customer[0].body)[:2])
    parts = [first]
    if len(customer) > 1:
        parts.append("Latest: " + " ".join(_sentences(customer[-1].body)[:2]))
    others = len(ticket.messages) - len(customer)
    lead = f"{len(customer)} customer message{'s' if len(customer) != 1 else ''}"
    if others:
        lead += f", {others} repl{'ies' if others != 1 else 'y'}"
    return _clip(f"{lead}. " + " ".join(parts), limit)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class _Index:
    docs: tuple[_Doc, ...]
    vectorizer: FeatureUnion | None
    matrix: object  # the L2-normalised TF-IDF rows of `docs`: word features first, then character n-grams
    words: int = 0  # how many of the columns are word features


def _build_index(docs: Sequence[_Doc]) -> _Index:
    if not docs:
        return _Index(docs=(), vectorizer=None, matrix=None)
    vectorizer = FeatureUnion([
        ("words", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english", min_df=1)),
        ("chars", TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5), min_df=1)),
    ])
    matrix = normalize(vectorizer.fit_transform([d.text for d in docs]))
    words = len(vectorizer.transformer_list[0][1].vocabulary_)
    return _Index(docs=tuple(docs), vectorizer=vectorizer, matrix=matrix, words=words)


class LocalEngine:
    """Retrieval engine over knowledge articles and history tickets; see the module docstring."""

    def __init__(self, *, articles: Sequence[Article] = (), history: Iterable[Ticket] = ()) -> None:
        self._articles = {a.id: a for a in articles}
        docs = [_Doc(label=a.id, text=passage, answer=a.body) for a in articles for passage in _passages(a)]
        for past in history:
            resolution = past.resolution
            if resolution is None:
                continue
            if not resolution.answer_id:
                # A person answered in their own words: similar tickets are people's work, and vote so.
                docs.append(_Doc(label=HANDLED_BY_PERSON, text=past.customer_text(), answer=""))
                continue
            article = self._articles.get(resolution.answer_id)
            answer = article.body if article else (resolution.answer or "")
            if answer.strip():
                docs.append(_Doc(label=resolution.answer_id, text=past.customer_text(), answer=answer))
        self._index = _build_index(docs)
        self._learning = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._index.docs)

    def learn(self, customer_text: str, answer_source: str, answer: str) -> None:
        """Add a reply a person approved or wrote, so a similar ticket can be answered from it next time.
        Refits the index (milliseconds for thousands of documents) and swaps it in whole, so concurrent
        assessments see either the old index or the new one."""
        if not customer_text.strip() or not answer.strip():
            return
        with self._learning:
            docs = (*self._index.docs, _Doc(label=answer_source, text=customer_text, answer=answer))
            self._index = _build_index(docs)

    def assess(self, ticket: Ticket) -> Assessment:
        return self.assess_many([ticket])[0]

    def retrieve(self, ticket: Ticket, *, k: int = 4) -> list[Passage]:
        """The `k` closest distinct answers that share a word with the ticket, closest first."""
        index = self._index
        if index.vectorizer is None:
            return []
        query = normalize(index.vectorizer.transform([ticket.customer_text()]))
        row = (query @ index.matrix.T).toarray()[0]
        shared = (query[:, :index.words] @ index.matrix[:, :index.words].T).toarray()[0] > 0
        passages: dict[str, Passage] = {}
        for position in np.argsort(-row):
            doc = index.docs[position]
            if row[position] < MIN_RELEVANCE or len(passages) >= k:
                break
            if shared[position] and doc.label != HANDLED_BY_PERSON and doc.label not in passages:
                passages[doc.label] = Passage(source=doc.label, text=doc.answer, similarity=round(float(row[position]), 4))
        return list(passages.values())

    def assess_many(self, tickets: Sequence[Ticket]) -> list[Assessment]:
        """Assess tickets in one matrix product: the simulation replays thousands at once."""
        index = self._index
        if index.vectorizer is None or not tickets:
            return [Assessment(confidence=0.0, answer=None, answer_source=None, summary=summarize(t)) for t in tickets]
        queries = normalize(index.vectorizer.transform([t.customer_text() for t in tickets]))
        similarities = (queries @ index.matrix.T).toarray()
        # Character n-grams forgive typos but also link unrelated words ("fnord" ~ "password"): a match must
        # share at least one real word with the ticket.
        shared_words = (queries[:, :index.words] @ index.matrix[:, :index.words].T).toarray() > 0
        return [self._assess_row(index, ticket, row, shared)
                for ticket, row, shared in zip(tickets, similarities, shared_words, strict=True)]

    @staticmethod
    def _assess_row(index: _Index, ticket: Ticket, row: np.ndarray, shared_words: np.ndarray) -> Assessment:
        summary = summarize(ticket)
        k = min(NEIGHBOURS, len(row))
        top = np.argpartition(-row, k - 1)[:k]
        top = top[np.argsort(-row[top])]
        votes: dict[str, float] = defaultdict(float)
        best_doc: dict[str, int] = {}
        floor = max(MIN_RELEVANCE, COMPETITIVE_BAND * float(row[top[0]]))
        for position in top:
            similarity = float(row[position])
            if similarity < floor:
                break
            if not shared_words[position]:
                continue
            label = index.docs[position].label
            votes[label] += similarity
            best_doc.setdefault(label, int(position))
        evidence = tuple({"source": index.docs[i].label or "handled by a person", "similarity": round(float(row[i]), 3)}
                         for i in top[:5] if row[i] > 0)
        if not votes:
            return Assessment(confidence=0.0, answer=None, answer_source=None, summary=summary, evidence=evidence)
        label, score = max(votes.items(), key=lambda item: item[1])
        if label == HANDLED_BY_PERSON:
            return Assessment(confidence=0.0, answer=None, answer_source=None, summary=summary, evidence=evidence)
        relevance = float(row[best_doc[label]])
        agreement = score / sum(votes.values())
        closeness = min(1.0, relevance / FULL_MATCH_SIMILARITY)
        confidence = round(closeness * agreement, 4)
        return Assessment(confidence=confidence, answer=index.docs[best_doc[label]].answer, answer_source=label,
                          summary=summary, evidence=evidence)
