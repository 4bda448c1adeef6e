"""The local AI engine: answers from knowledge articles, resolved past tickets and agents' replies, with no
network, and says how likely its answer is to be right.

Three parts, all scikit-learn:
- an index: TF-IDF over words and character n-grams (typos still match) of every article passage and past
  ticket, each labelled with its answer (article id, or the macro a person reused);
- a chooser: a linear SVM over the same features picks the answer; with fewer than two answers to choose from
  (knowledge of one article, say) the nearest neighbours' vote picks it;
- a calibrator: from the shape of the evidence (how close the nearest documents with that answer are, how
  strongly the neighbours agree, the SVM's margin, ...) it gives the probability that the answer is right,
  learnt on the history itself (see `Calibrator`). Without enough history it falls back to a plain score,
  closeness × agreement, which orders answers but is not a probability.
`Engine` (bot.engine.base) is the interface every engine (this one, the OpenAI one) implements.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler, normalize
from sklearn.svm import LinearSVC

from bot.engine.base import Passage, summarize
from bot.engine.knowledge import Article
from bot.models import Assessment, Ticket

# Similarity at which a match counts as fully relevant, and the floor below which there is no answer at all.
# Set from the bundled sample's sweep (docs/benchmarks.md): paraphrases of one question land above 0.55.
FULL_MATCH_SIMILARITY = 0.55
MIN_RELEVANCE = 0.12
NEIGHBOURS = 10
# Only neighbours at least this fraction as similar as the nearest one compete for the vote: distant matches
# share vocabulary with everything and would otherwise dilute agreement.
COMPETITIVE_BAND = 0.6
BLOCK = 512
NEAR_DUPLICATE = 0.9  # queries per matrix product: bounds memory at BLOCK × documents similarities
# Fewer resolved past tickets than this and there is too little to calibrate on: the plain score is used.
MIN_CALIBRATION_EXAMPLES = 50
CROSS_FIT_FOLDS = 5
# The share of incoming tickets assumed to ask something the knowledge does not cover, and how the examples of
# it are made (see Calibrator).
UNCOVERED_SHARE = 0.2
UNCOVERED_FOLDS = 5
UNCOVERED_PER_FOLD = 400
HANDLED_BY_PERSON = ""  # the label of past tickets a person answered without reusing a macro or article


@dataclass(frozen=True)
class _Doc:
    label: str  # the answer source: article id or the answer_id a person reused
    text: str  # what is matched against
    answer: str  # what would be sent
    kind: str = "history"  # "article" passage or "history" ticket


def _passages(article: Article) -> list[str]:
    """What an article is matched on: its title, each paragraph under the title, and the whole. Short passages
    match short questions far better than a long article does."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", article.body) if len(p.strip()) > 40]
    return [article.title, *(f"{article.title}\n{p}" for p in paragraphs), f"{article.title}\n{article.body}"]


@dataclass(frozen=True)
class _Index:
    docs: tuple[_Doc, ...]
    vectorizer: FeatureUnion | None
    matrix: object  # the L2-normalised TF-IDF rows of `docs`: word features first, then character n-grams
    words: int = 0  # how many of the columns are word features
    labels: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    def transform(self, texts: Sequence[str]):
        return normalize(self.vectorizer.transform(list(texts)))


def _build_index(docs: Sequence[_Doc]) -> _Index:
    if not docs:
        return _Index(docs=(), vectorizer=None, matrix=None)
    vectorizer = FeatureUnion([
        ("words", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english", min_df=1)),
        ("chars", TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5), min_df=1)),
    ])
    matrix = normalize(vectorizer.fit_transform([d.text for d in docs])).tocsr()
    words = len(vectorizer.transformer_list[0][1].vocabulary_)
    labels = np.array([d.label for d in docs], dtype=object)
    return _Index(docs=tuple(docs), vectorizer=vectorizer, matrix=matrix, words=words, labels=labels)


class _Chooser:
    """Picks the answer: a linear SVM over the index's features (it reads every past ticket of an answer at
    once, where neighbours see only the few nearest). Its scores also feed the calibrator."""

    def __init__(self, model: LinearSVC) -> None:
        self._model = model

    @classmethod
    def fit(cls, index: _Index, rows: Sequence[int] | None = None) -> _Chooser | None:
        rows = np.arange(len(index.docs)) if rows is None else np.asarray(rows)
        # With little history (knowledge articles alone, say) an SVM has too few examples per answer: the
        # neighbours' vote chooses instead.
        history = sum(index.docs[i].kind == "history" for i in rows)
        if history < MIN_CALIBRATION_EXAMPLES or len(set(index.labels[rows])) < 2:
            return None
        model = LinearSVC(C=0.5, random_state=0)
        model.fit(index.matrix[rows], index.labels[rows].astype(str))
        return cls(model)

    def choose(self, queries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per query: the chosen label, its score, and its lead over the runner-up."""
        scores = self._model.decision_function(queries)
        classes = self._model.classes_
        if scores.ndim == 1:  # two classes: one signed score
            chosen = np.where(scores > 0, classes[1], classes[0])
            return chosen, np.abs(scores), 2 * np.abs(scores)
        order = np.argsort(-scores, axis=1)[:, :2]
        first = scores[np.arange(len(scores)), order[:, 0]]
        second = scores[np.arange(len(scores)), order[:, 1]]
        return classes[order[:, 0]], first, first - second


class LocalEngine:
    """Retrieval engine over knowledge articles and history tickets, with a calibrated confidence; see the
    module docstring."""

    def __init__(self, *, articles: Sequence[Article] = (), history: Iterable[Ticket] = ()) -> None:
        self._articles = {a.id: a for a in articles}
        docs = [_Doc(label=a.id, text=passage, answer=a.body, kind="article")
                for a in articles for passage in _passages(a)]
        for past in history:
            resolution = past.resolution
            if resolution is None:
                continue
            if not resolution.answer_id:
                # A person answered in their own words: similar tickets are people's work, and vote so.
                docs.append(_Doc(label=HANDLED_BY_PERSON, text=past.customer_text(), answer="", kind="history"))
                continue
            article = self._articles.get(resolution.answer_id)
            answer = article.body if article else (resolution.answer or "")
            if answer.strip():
                docs.append(_Doc(label=resolution.answer_id, text=past.customer_text(), answer=answer,
                                 kind="history"))
        self._index = _build_index(docs)
        self._chooser = _Chooser.fit(self._index)
        self._learning = threading.Lock()
        self._calibrator: Calibrator | None = Calibrator.fit(self._index)

    @property
    def size(self) -> int:
        return len(self._index.docs)

    @property
    def calibrated(self) -> bool:
        return self._calibrator is not None

    def learn(self, customer_text: str, answer_source: str, answer: str) -> None:
        """Add a reply a person approved or wrote, so a similar ticket can be answered from it next time.
        Refits the index and the chooser (about a second for ten thousand documents) and swaps them in
        together, so concurrent assessments see either the old pair or the new one. The calibrator is kept:
        it scores the shape of the evidence, not the documents themselves."""
        if not customer_text.strip() or not answer.strip():
            return
        with self._learning:
            docs = (*self._index.docs, _Doc(label=answer_source, text=customer_text, answer=answer, kind="history"))
            index = _build_index(docs)
            self._index, self._chooser = index, _Chooser.fit(index)

    def assess(self, ticket: Ticket) -> Assessment:
        return self.assess_many([ticket])[0]

    def retrieve(self, ticket: Ticket, *, k: int = 4) -> list[Passage]:
        """The `k` closest distinct answers that share a word with the ticket, closest first."""
        index = self._index
        if index.vectorizer is None:
            return []
        query = index.transform([ticket.customer_text()])
        row = (query @ index.matrix.T).toarray()[0]
        shared = (query[:, :index.words] @ index.matrix[:, :index.words].T).toarray()[0] > 0
        passages: dict[str, Passage] = {}
        for position in np.argsort(-row):
            doc = index.docs[position]
            if row[position] < MIN_RELEVANCE or len(passages) >= k:
                break
            if shared[position] and doc.label != HANDLED_BY_PERSON and doc.label not in passages:
                passages[doc.label] = Passage(source=doc.label, text=doc.answer,
                                              similarity=round(float(row[position]), 4))
        return list(passages.values())

    def assess_many(self, tickets: Sequence[Ticket]) -> list[Assessment]:
        """Assess tickets in blocks of matrix products: the simulation replays thousands at once."""
        index, chooser = self._index, self._chooser
        if index.vectorizer is None or not tickets:
            return [Assessment(confidence=0.0, answer=None, answer_source=None, summary=summarize(t)) for t in tickets]
        texts = [t.customer_text() for t in tickets]
        matches: list[_Match] = []
        for start in range(0, len(texts), BLOCK):
            chunk = texts[start:start + BLOCK]
            matches += _match_block(index, chooser, index.transform(chunk), [_length(t) for t in chunk])
        confidences = self._confidences(matches)
        return [self._assessment(index, ticket, match, confidence)
                for ticket, match, confidence in zip(tickets, matches, confidences, strict=True)]

    def _confidences(self, matches: Sequence[_Match]) -> list[float]:
        answered = [i for i, m in enumerate(matches) if m.label is not None]
        confidences = [0.0] * len(matches)
        if not answered:
            return confidences
        if self._calibrator is not None:
            scores = self._calibrator.predict(np.vstack([matches[i].features for i in answered]))
        else:
            scores = [matches[i].heuristic for i in answered]
        for i, score in zip(answered, scores, strict=True):
            confidences[i] = round(float(score), 4)
        return confidences

    @staticmethod
    def _assessment(index: _Index, ticket: Ticket, match: _Match, confidence: float) -> Assessment:
        summary = summarize(ticket)
        if match.label is None:
            return Assessment(confidence=0.0, answer=None, answer_source=None, summary=summary,
                              evidence=match.evidence)
        return Assessment(confidence=confidence, answer=index.docs[match.answer_position].answer,
                          answer_source=match.label, summary=summary, evidence=match.evidence, topic=match.label)


def _length(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class _Match:
    """The chosen answer for one query and the shape of the evidence behind it."""

    label: str | None  # None: nothing relevant, or similar tickets are handled by people
    answer_position: int | None
    features: np.ndarray
    heuristic: float  # closeness × agreement: the score used when there is no history to calibrate on
    evidence: tuple[dict, ...]


FEATURES = ("relevance", "top_similarity", "agreement", "margin", "support", "person_share", "is_top1",
            "from_article", "query_words", "chooser_score", "chooser_lead", "chooser_agrees")


def _match_block(index: _Index, chooser: _Chooser | None, queries, lengths: Sequence[int], *,
                 hidden: Sequence[Sequence[int]] | None = None) -> list[_Match]:
    """Match a block of L2-normalised query rows against the index, optionally hiding, per row, some documents
    (when calibrating: the query itself, or every document of its answer)."""
    similarities = (queries @ index.matrix.T).toarray()
    # Character n-grams forgive typos but also link unrelated words ("fnord" ~ "password"): a match must
    # share at least one real word with the ticket.
    shared = (queries[:, :index.words] @ index.matrix[:, :index.words].T).toarray() > 0
    similarities[~shared] = np.minimum(similarities[~shared], 0.0)
    for row, columns in enumerate(hidden or ()):
        similarities[row, columns] = -1.0
    choices = chooser.choose(queries) if chooser is not None else None
    return [_match_row(index, row, length, None if choices is None else (choices[0][i], choices[1][i], choices[2][i]))
            for i, (row, length) in enumerate(zip(similarities, lengths, strict=True))]


def _match_row(index: _Index, row: np.ndarray, length: int, choice: tuple[str, float, float] | None) -> _Match:
    k = min(NEIGHBOURS, len(row))
    top = np.argpartition(-row, k - 1)[:k]
    top = top[np.argsort(-row[top])]
    evidence = tuple({"source": index.docs[i].label or "handled by a person", "similarity": round(float(row[i]), 3)}
                     for i in top[:5] if row[i] > 0)
    top_similarity = float(row[top[0]])
    votes: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    floor = max(MIN_RELEVANCE, COMPETITIVE_BAND * top_similarity)
    for position in top:
        similarity = float(row[position])
        if similarity < MIN_RELEVANCE:
            break
        label = index.docs[position].label
        counts[label] += 1
        if similarity >= floor:
            votes[label] += similarity
    none = _Match(label=None, answer_position=None, features=np.zeros(len(FEATURES)), heuristic=0.0,
                  evidence=evidence)
    knn_label = max(votes.items(), key=lambda item: item[1])[0] if votes else None
    label = knn_label if choice is None else str(choice[0])
    if top_similarity >= NEAR_DUPLICATE:
        # A near copy of a past ticket (an agent's reply to the same question, learnt last hour) is better
        # evidence than any model of the whole history.
        label = index.docs[top[0]].label
    if label is None or label == HANDLED_BY_PERSON:
        return none
    # The closest document with the chosen answer: its text is what would be sent, its closeness the evidence.
    with_label = np.flatnonzero(index.labels == label)
    best = int(with_label[np.argmax(row[with_label])]) if len(with_label) else None
    if best is None or row[best] < MIN_RELEVANCE:
        return none
    relevance = float(row[best])
    total = sum(votes.values()) or 1.0
    score = votes.get(label, 0.0)
    second = max((v for other, v in votes.items() if other != label), default=0.0)
    agreement = score / total
    chooser_score, chooser_lead = (float(choice[1]), float(choice[2])) if choice is not None else (0.0, 0.0)
    features = np.array([
        relevance, top_similarity, agreement, (score - second) / score if score else -1.0, counts[label] / k,
        votes.get(HANDLED_BY_PERSON, 0.0) / total, float(index.docs[top[0]].label == label),
        float(index.docs[best].kind == "article"), np.log1p(length), chooser_score, chooser_lead,
        float(knn_label == label),
    ])
    heuristic = min(1.0, relevance / FULL_MATCH_SIMILARITY) * agreement
    return _Match(label=label, answer_position=best, features=features, heuristic=heuristic, evidence=evidence)


class Calibrator:
    """P(the chosen answer is right | the shape of the evidence), learnt from the history itself.

    Two kinds of examples, each made by matching past tickets exactly as a new ticket would be matched, with a
    chooser that never saw them:
    - covered: each resolved past ticket against everything else (the index leaves it out; the chooser is
      cross-fitted in `CROSS_FIT_FOLDS` folds); right when the answer found is the one a person actually used;
    - uncovered: the tickets of a fifth of the answers at a time, with every document of those answers hidden
      and a chooser fitted without them, so the right answer cannot be found and any answer is wrong. This is
      what a question the knowledge does not cover looks like — the case a confident engine gets wrong;
      without it the model would only ever have seen questions it can answer. These examples are weighted to
      stand for `UNCOVERED_SHARE` of the traffic.
    A logistic regression over spline expansions of the evidence (smooth, so it keeps the order of nearly equal
    tickets where a step-wise calibration would tie them) gives the probability, fitted by log loss, so that
    among answers scored 0.9 about nine in ten are right. Gradient-boosted trees were tried and overfit this
    evidence (bench/engine_quality.py).
    """

    def __init__(self, model) -> None:
        self._model = model

    @classmethod
    def fit(cls, index: _Index) -> Calibrator | None:
        history = np.array([i for i, d in enumerate(index.docs) if d.kind == "history"])
        if len(history) < MIN_CALIBRATION_EXAMPLES or index.vectorizer is None:
            return None
        covered_x, covered_y = cls._covered(index, history)
        uncovered_x, uncovered_y = cls._uncovered(index, history)
        targets = np.array(covered_y + uncovered_y, dtype=int)
        if len(targets) < MIN_CALIBRATION_EXAMPLES or min(targets.sum(), len(targets) - targets.sum()) < 5:
            return None
        weights = np.ones(len(targets))
        if uncovered_x and covered_x:
            weights[len(covered_x):] = UNCOVERED_SHARE / (1 - UNCOVERED_SHARE) * len(covered_x) / len(uncovered_x)
        model = make_pipeline(StandardScaler(), SplineTransformer(n_knots=5, degree=3),
                              LogisticRegression(C=1.0, max_iter=3000))
        model.fit(np.vstack(covered_x + uncovered_x), targets, logisticregression__sample_weight=weights)
        return cls(model)

    @staticmethod
    def _examples(index: _Index, chooser: _Chooser | None, positions: Sequence[int],
                  hidden: Sequence[Sequence[int]]) -> tuple[list[np.ndarray], list[bool]]:
        features, targets = [], []
        matches = _match_block(index, chooser, index.matrix[list(positions)],
                               [_length(index.docs[i].text) for i in positions], hidden=hidden)
        for position, match in zip(positions, matches, strict=True):
            if match.label is not None:
                features.append(match.features)
                targets.append(match.label == index.docs[position].label)
        return features, targets

    @classmethod
    def _covered(cls, index: _Index, history: np.ndarray) -> tuple[list[np.ndarray], list[bool]]:
        features, targets = [], []
        everything = np.arange(len(index.docs))
        for fold in range(CROSS_FIT_FOLDS):
            queries = history[fold::CROSS_FIT_FOLDS]
            chooser = _Chooser.fit(index, np.setdiff1d(everything, queries))
            for start in range(0, len(queries), BLOCK):
                block = queries[start:start + BLOCK].tolist()
                x, y = cls._examples(index, chooser, block, [[i] for i in block])
                features += x
                targets += y
        return features, targets

    @classmethod
    def _uncovered(cls, index: _Index, history: np.ndarray) -> tuple[list[np.ndarray], list[bool]]:
        labels = sorted({index.docs[i].label for i in history} - {HANDLED_BY_PERSON})
        if len(labels) < 3:
            return [], []
        rng = np.random.default_rng(0)
        features, targets = [], []
        for fold in range(UNCOVERED_FOLDS):
            hidden_labels = set(labels[fold::UNCOVERED_FOLDS])
            is_hidden = np.isin(index.labels, list(hidden_labels))
            hidden_columns = np.flatnonzero(is_hidden).tolist()
            queries = [i for i in history if is_hidden[i]]
            if len(queries) > UNCOVERED_PER_FOLD:
                queries = sorted(rng.choice(queries, UNCOVERED_PER_FOLD, replace=False).tolist())
            chooser = _Chooser.fit(index, np.flatnonzero(~is_hidden))
            for start in range(0, len(queries), BLOCK):
                block = queries[start:start + BLOCK]
                x, y = cls._examples(index, chooser, block, [hidden_columns] * len(block))
                features += x
                targets += y
        return features, targets

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self._model.predict_proba(features)[:, 1]
