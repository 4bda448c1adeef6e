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
  closeness × agreement × the share of the question's content words the answer explains (bot.engine.wording),
  which orders answers but is not a probability.
`Engine` (bot.engine.base) is the interface every engine (this one, the OpenAI one) implements.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from bot.engine.base import Passage, Verdict, own_details, summarize
from bot.engine.embeddings import Embedder
from bot.engine.knowledge import Article
from bot.engine.monotone import monotone_spline_model
from bot.engine.wording import explained_share
from bot.models import Assessment, Ticket
from bot.text import addressed_to, details, masked, name_words, without_sign_off
from bot.workers import forked_pool, forking_helps, inherited

log = logging.getLogger(__name__)

# Similarity at which a match counts as fully relevant, and the floor below which there is no answer at all.
# Set from the bundled sample's sweep (docs/benchmarks.md): paraphrases of one question land above 0.55. Re-checked
# on the five dev replays with MIN_RELEVANCE, COMPETITIVE_BAND and NEIGHBOURS halved and doubled: no AURC moves by
# more than 0.003 on the three larger sets, and no alternative is better on all five ("Decision quality").
FULL_MATCH_SIMILARITY = 0.55
MIN_RELEVANCE = 0.12
NEIGHBOURS = 10
# Only neighbours at least this fraction as similar as the nearest one compete for the vote: distant matches
# share vocabulary with everything and would otherwise dilute agreement.
COMPETITIVE_BAND = 0.6
CHAR_NGRAM_MAX = 4
BLOCK = 512  # queries per matrix product: bounds memory at BLOCK × documents similarities
# From this many tickets at once (a replayed file), an engine fitted in processes matches them in forked workers too.
PARALLEL_MATCH = 2000
# Fewer resolved past tickets than this and there is too little to calibrate on: the plain score is used.
MIN_CALIBRATION_EXAMPLES = 50
# Each calibration chooser leaves out at most a third of the history, so its examples are a little less sure than
# the deployed chooser's — the safe side. With a small history that takes three folds (rather than five: on the
# dev replays three calibrated better, AURC −3 to −4 %, and fitted 35 % faster); once the covered examples are
# capped, a long history needs fewer folds (two from 4,500 tickets, one from 9,000), each still leaving out at
# most a third: fewer fits, the same examples (bench/decisions.py, docs/benchmarks.md). 3,000 examples are plenty
# for the calibrator's hundred or so parameters. At 4,000 a 10,000-ticket history took a second fold: one more
# SVM fit, a sixth of the simulation's CPU, bought AURC 0.0463 instead of 0.0467 on the speed bench's data (means
# over three samples of the examples, which alone move it by ±0.0003) and at most 0.0005 on the dev replays.
HELD_OUT_PARTS = 3  # a fold leaves out at most one part in this many of the history
MAX_COVERED_EXAMPLES = 3000
# P(right | evidence, covered) is a model fitted on the covered examples; where few of them back a value (a small
# history, or a rare shape of evidence) that value is a guess, and a guess near 0.95 sent answers out on their own.
# The confidence uses the one-sided 95 % lower bound (Wilson) of the estimate, counting the covered examples whose
# own estimate lies within CALIBRATION_BAND of it, made non-decreasing (a higher estimate never gets a lower
# confidence, so the order of tickets hardly moves). Thousands of examples leave it nearly unchanged; a few dozen
# pull 0.95 under 0.9. The standard one-sided 95 % and a band the width of the gap between 0.9 and 0.95 were
# taken as they are, not tuned (dev replays: docs/benchmarks.md, "Confidence bounded by its evidence"). The other
# factor, P(covered | evidence), is bounded the same way over every calibration example: fitted on a few hundred
# uncovered examples, it too was sure of answers to questions the knowledge does not cover.
CALIBRATION_Z = 1.645
CALIBRATION_BAND = 0.05
# The linear SVM's stopping tolerance: liblinear's default is 1e-4; at 1e-3 the dev replays' figures are the same
# to the third digit and a fit takes a tenth or so less time (docs/benchmarks.md, "Choices for speed").
SVM_TOLERANCE = 1e-3
# liblinear draws its coordinate order from one random generator per process, seeded at each fit: two fits on
# concurrent threads interleave their draws, and the same history gave a slightly different chooser from run to
# run (NLU++ banking test AURC 0.5504–0.5507). So SVM fits take turns within a process; forked workers each have
# their own generator. A fit is then the same on threads and in processes, every time (serve fits what simulate
# fitted); on threads the fits of a 10,000-ticket history take about 17 s instead of 12.
_SVM_FIT = threading.Lock()
_NUMBER = re.compile(r"\d+")
CALIBRATION_THREADS = max(1, min(4, os.cpu_count() or 1))
# The share of incoming tickets that ask something the knowledge does not cover is estimated from the tickets
# themselves (see Calibrator); this is the share assumed until there are enough of them, and the bounds of the
# estimate. The estimate may raise the share, never lower it below the default: on every dev replay it came out
# low (2–20 % against true shares of 21–60 %), because real uncovered questions (a twin of a covered intent, a
# combination of covered ones) look more like covered ones than the calibrator's simulated ones do, and a share
# too low makes the engine sure of answers to questions it cannot answer (docs/benchmarks.md).
DEFAULT_UNCOVERED_SHARE = 0.2
UNCOVERED_SHARE_BOUNDS = (DEFAULT_UNCOVERED_SHARE, 0.9)
MIN_TICKETS_TO_ESTIMATE = 200
# Live, the estimate follows the most recent tickets assessed.
RECENT_TICKETS = 1000
UNCOVERED_FOLDS = 3
UNCOVERED_PER_FOLD = 400
HANDLED_BY_PERSON = ""  # the label of past tickets a person answered without reusing a macro or article
# `learn(text, REJECTED, "")`, and a history ticket with this answer id: a question whose draft an agent rejected
# as wrong or not to automate. It never votes or trains the chooser (one rejection would outvote an article in a
# small knowledge base); a ticket at least REJECTED_NEAR_COPY similar to one, numbers aside (the same question
# again, a template email with another order number), gets no answer, so it is not drafted the same way twice —
# unless a reply agents sent for that question was learnt after the rejection: the latest word on it stands.
REJECTED = "seam-rejected"
REJECTED_NEAR_COPY = 0.9


@dataclass(frozen=True)
class EngineOptions:
    """The engine's choices that were measured against each other (bench/decisions.py, docs/benchmarks.md).
    The defaults are the chosen ones; `variants()` names the alternatives the benchmark keeps comparing."""

    # English stop words out of the word features. Function words tell intents apart ("where were you before",
    # "what can you do for me"), so they stay in: AURC −4 % on the dev replays, top-1 up on every dataset.
    remove_stop_words: bool = False
    # Without a shared word or above MIN_RELEVANCE there is no answer at all (hard gate), or the chooser's answer
    # stands and low relevance only lowers its confidence (soft gate): no answerable question is left without a
    # suggested answer for a person to approve.
    hard_gate: bool = False
    # A past ticket this similar decides the answer, overriding the chooser (None: never). The chooser already
    # weighs near copies; the override only moved a few answers, on balance the wrong way.
    near_duplicate: float | None = None
    # The share of questions the knowledge does not cover: None estimates it from the tickets (Calibrator).
    uncovered_share: float | None = None
    # With sentence embeddings (EMBEDDINGS_MODEL), how much they weigh beside the TF-IDF vector: each row is
    # [TF-IDF, weight × embedding], normalised, so a similarity is (lexical + weight² × semantic) / (1 + weight²).
    semantic_weight: float = 1.0
    # Without history to calibrate on, the plain score is also weighed by the share of the question's content
    # words the answer explains (bot.engine.wording): on the knowledge-only dev replays a wrong answer at 0.9 came
    # 3–4 times less often, AURC better on the three larger sets (bench/knowledge_only.py, docs/benchmarks.md).
    explain_content: bool = True

    @classmethod
    def variants(cls) -> dict[str, EngineOptions]:
        default = cls()
        return {
            "Seam, stop words removed": replace(default, remove_stop_words=True),
            "Seam, hard relevance gate": replace(default, hard_gate=True),
            "Seam, near-duplicate override": replace(default, near_duplicate=0.9),
            "Seam, uncovered share fixed at 20%": replace(default, uncovered_share=DEFAULT_UNCOVERED_SHARE),
            "Seam as before": cls(remove_stop_words=True, hard_gate=True, near_duplicate=0.9,
                                  uncovered_share=DEFAULT_UNCOVERED_SHARE),
        }


@dataclass(frozen=True)
class _Doc:
    label: str  # the answer source: article id or the answer_id a person reused
    text: str  # what is matched against
    answer: str  # what would be sent
    kind: str = "history"  # "article" passage or "history" ticket
    # The words of the name of the customer a past ticket's reply was written for: in another customer's reply
    # they are that customer's details (`_reply`).
    names: tuple[str, ...] = ()


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
    options: EngineOptions = field(default_factory=EngineOptions)
    # For "what in the question does the answer not explain": the columns of single words, each document's words,
    # and per answer how many of its documents hold each word.
    unigrams: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    doc_words: object = None  # documents × single words, 1 where the document holds the word (CSR)
    answer_words: object = None  # answers × single words: documents of the answer holding it (CSR)
    answer_of: dict = field(default_factory=dict)  # label -> row of answer_words
    doc_answer: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))  # document -> row
    answer_docs: tuple = ()  # row -> its documents' positions, ascending (matching reads them for every query)

    semantic: float = 0.0  # the weight of the embedding columns after the TF-IDF ones (0: lexical only)
    dimension: int = 0  # how many embedding columns there are (the size of the vectors it was built with)
    rejected: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))  # positions of kind "rejected"
    # Agents' word on questions, in the order it was learnt: the rejected questions and every answered past ticket
    # after the first of them, as TF-IDF rows of their texts with every number alike (`_numbers_alike`), and
    # which of them are rejections (`_rejected_before`).
    verdict_rows: object = None
    verdict_rejects: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))
    cache: dict = field(default_factory=dict, compare=False, repr=False)  # what is built from it on first use

    def transform(self, texts: Sequence[str], vectors: np.ndarray | None = None):
        lexical = normalize(self.vectorizer.transform(list(texts)))
        return _with_vectors(lexical, vectors, self.semantic)

    def word_terms(self) -> _WordTerms:
        """The single words of the index as text, and their weights (built on first use: only an engine without
        history to calibrate on needs them)."""
        found = self.cache.get("word_terms")
        if found is None:
            words = self.vectorizer.transformer_list[0][1]
            terms = {column: term for term, column in words.vocabulary_.items() if " " not in term}
            found = self.cache["word_terms"] = _WordTerms(
                terms=[terms[int(c)] for c in self.unigrams],
                weights={term: float(words.idf_[c]) for c, term in terms.items()},
                unknown_weight=float(np.log(1 + len(self.docs)) + 1))
        return found


@dataclass(frozen=True)
class _WordTerms:
    terms: list[str]  # the index's single words, in the order of `_Index.unigrams` (answer_words' columns)
    weights: dict[str, float]  # word -> inverse document frequency
    unknown_weight: float


def _with_vectors(lexical, vectors: np.ndarray | None, weight: float):
    """TF-IDF rows with `weight` × their sentence embeddings appended, normalised (or the TF-IDF rows alone)."""
    if not weight or vectors is None:
        return lexical.tocsr()
    return normalize(hstack([lexical, csr_matrix(weight * vectors)]).tocsr())


def _build_index(docs: Sequence[_Doc], options: EngineOptions, vectors: np.ndarray | None = None) -> _Index:
    if not docs:
        return _Index(docs=(), vectorizer=None, matrix=None, options=options)
    stop_words = "english" if options.remove_stop_words else None
    vectorizer = FeatureUnion([
        ("words", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words=stop_words, min_df=1)),
        # Character 3–4-grams: on the dev replays as good as 3–5-grams (AURC better on four of five sets) with a
        # fifth fewer stored values, so every fit and match is cheaper (docs/benchmarks.md).
        ("chars", TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, CHAR_NGRAM_MAX),
                                  min_df=1)),
    ])
    semantic = options.semantic_weight if vectors is not None else 0.0
    matrix = _with_vectors(normalize(vectorizer.fit_transform([d.text for d in docs])), vectors, semantic)
    vocabulary = vectorizer.transformer_list[0][1].vocabulary_
    words = len(vocabulary)
    labels = np.array([d.label for d in docs], dtype=object)
    unigrams = np.array(sorted(column for term, column in vocabulary.items() if " " not in term), dtype=int)
    doc_words = (matrix[:, unigrams] > 0).astype(np.int32).tocsr()
    answers = sorted(set(labels.tolist()))
    answer_of = {label: row for row, label in enumerate(answers)}
    doc_answer = np.array([answer_of[label] for label in labels], dtype=int)
    membership = csr_matrix((np.ones(len(docs), dtype=np.int32), (doc_answer, np.arange(len(docs)))),
                            shape=(len(answers), len(docs)))
    by_answer = np.argsort(doc_answer, kind="stable")
    bounds = np.searchsorted(doc_answer[by_answer], np.arange(len(answers) + 1))
    answer_docs = tuple(by_answer[bounds[row]:bounds[row + 1]] for row in range(len(answers)))
    # Sorted: _unexplained finds words in an answer's row by binary search (a sparse product's are not sorted).
    answer_words = (membership @ doc_words).tocsr().sorted_indices()
    rejected = np.array([i for i, d in enumerate(docs) if d.kind == "rejected"], dtype=int)
    verdicts = [d for d in docs[rejected[0]:] if d.kind == "rejected"
                or (d.kind == "history" and d.label != HANDLED_BY_PERSON)] if len(rejected) else []
    verdict_rows = normalize(vectorizer.transform([_numbers_alike(d.text) for d in verdicts])) if verdicts else None
    return _Index(docs=tuple(docs), vectorizer=vectorizer, matrix=matrix, words=words, labels=labels,
                  options=options, unigrams=unigrams, doc_words=doc_words, answer_words=answer_words,
                  answer_of=answer_of, doc_answer=doc_answer, answer_docs=answer_docs, semantic=semantic,
                  dimension=vectors.shape[1] if semantic else 0,
                  rejected=rejected, verdict_rows=verdict_rows,
                  verdict_rejects=np.array([d.kind == "rejected" for d in verdicts], dtype=bool))


def _numbers_alike(text: str) -> str:
    """The text with every number written 0: an order or ticket number does not make another question."""
    return _NUMBER.sub("0", text)


class _Chooser:
    """Picks the answer: a linear SVM over the index's features (it reads every past ticket of an answer at
    once, where neighbours see only the few nearest). Its scores also feed the calibrator."""

    def __init__(self, model: LinearSVC) -> None:
        self._model = model

    @classmethod
    def fit(cls, index: _Index, rows: Sequence[int] | None = None) -> _Chooser | None:
        rows = np.arange(len(index.docs)) if rows is None else np.asarray(rows)
        if len(index.rejected):
            rows = rows[~np.isin(rows, index.rejected)]
        # With little history (knowledge articles alone, say) an SVM has too few examples per answer: the
        # neighbours' vote chooses instead.
        history = sum(index.docs[i].kind == "history" for i in rows)
        if history < MIN_CALIBRATION_EXAMPLES or len(set(index.labels[rows])) < 2:
            return None
        model = LinearSVC(C=0.5, tol=SVM_TOLERANCE, random_state=0)
        with _SVM_FIT:
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


Fold = tuple[np.ndarray, list[int], list[list[int]]]
FoldRunner = Callable[[_Index, list[Fold]], list[tuple[list[np.ndarray], list[bool]]]]


# Tasks for forked workers (bot.workers.forked_pool): the fitting workers inherit the index, the matching workers
# (index, chooser, texts).
def _fit_chooser(index: _Index | None) -> _Chooser | None:
    return _Chooser.fit(index if index is not None else inherited())


def _run_fold_forked(fold: Fold) -> tuple[list[np.ndarray], list[bool]]:
    return Calibrator.run_fold(inherited(), fold)


def _match_span_forked(span: tuple[int, int]) -> list[_Match]:
    index, chooser, texts = inherited()
    chunk = texts[span[0]:span[1]]
    return _match_block(index, chooser, index.transform(chunk), [_length(t) for t in chunk], texts=chunk)


class _FittingPool:
    """The executor the fits run on, and how calibration folds are run on it: threads, or forked processes
    (see LocalEngine); processes only where forking helps (bot.workers) and for a sizeable history."""

    def __init__(self, index: _Index, *, processes: bool) -> None:
        self._index = index
        self._processes = processes and len(index.docs) >= 1000 and forking_helps()
        self._context = ExitStack()

    def __enter__(self) -> tuple[Executor, FoldRunner]:
        if self._processes:
            pool = self._context.enter_context(forked_pool(self._index, workers=min(4, os.cpu_count() or 2)))
            return pool, lambda _index, folds: list(pool.map(_run_fold_forked, folds))
        pool = self._context.enter_context(ThreadPoolExecutor(max_workers=1))
        return pool, Calibrator.run_folds_on_threads

    def __exit__(self, *exc: object) -> None:
        self._context.close()


class LocalEngine:
    """Retrieval engine over knowledge articles and history tickets, with a calibrated confidence; see the
    module docstring."""

    def __init__(self, *, articles: Sequence[Article] = (), history: Iterable[Ticket] = (),
                 options: EngineOptions | None = None, embedder: Embedder | None = None,
                 processes: bool = False, feedback: Callable[[], Sequence[Verdict]] | None = None) -> None:
        """`feedback`: the verdicts on recent automatic answers (serve: `bot.flows.quality.verdicts`), from which
        live assessments take a floor for the share of uncovered questions (`share_from_feedback`).

        `processes`: fit the chooser and the calibration folds in forked worker processes (the offline
        simulation: one process, nothing else running) instead of threads (serve, where forking a process full
        of threads and sockets is unsafe), and match a replayed file in them too. Processes use every core; on
        threads the SVM fits take turns (`_SVM_FIT`). Either way the fit is the same, from run to run."""
        self.options = options or EngineOptions()
        self._processes = processes
        history = list(history)
        self._articles = {a.id: a for a in articles}
        docs = [_Doc(label=a.id, text=passage, answer=a.body, kind="article")
                for a in articles for passage in _passages(a)]
        for past in history:
            resolution = past.resolution
            if resolution is None:
                continue
            if resolution.answer_id == REJECTED:
                docs.append(_Doc(label=HANDLED_BY_PERSON, text=past.customer_text(), answer="", kind="rejected"))
                continue
            if not resolution.answer_id:
                # A person answered in their own words: similar tickets are people's work, and vote so.
                docs.append(_Doc(label=HANDLED_BY_PERSON, text=past.customer_text(), answer="", kind="history"))
                continue
            article = self._articles.get(resolution.answer_id)
            answer = article.body if article else (resolution.answer or "")
            if answer.strip():
                docs.append(_Doc(label=resolution.answer_id, text=past.customer_text(), answer=answer,
                                 kind="history", names=name_words(past.requester_name) if not article else ()))
        # Sentence embeddings, when configured, join the TF-IDF vectors (EngineOptions.semantic_weight). If the
        # embeddings server fails now, the engine is lexical; if it fails later, or its vectors change size (the
        # model behind the name changed: `_vectors`), a lexical twin answers instead.
        vectors = embedder.embed([d.text for d in docs]) if embedder is not None and docs else None
        self._embedder = embedder if vectors is not None else None
        if embedder is not None and vectors is None:
            log.warning("embeddings unavailable while fitting: deciding on lexical evidence alone")
        self._lexical = LocalEngine(articles=articles, history=history, options=self.options, feedback=feedback) \
            if self._embedder is not None else None
        self._feedback = feedback
        self._index = _build_index(docs, self.options, vectors)
        # The deployed chooser fits beside the calibration folds: on two cores the fits overlap.
        with _FittingPool(self._index, processes=processes) as (pool, run_folds):
            chooser = pool.submit(_fit_chooser, self._index if not isinstance(pool, ProcessPoolExecutor) else None)
            self._calibrator: Calibrator | None = Calibrator.fit(self._index, run_folds=run_folds)
            self._chooser = chooser.result()
        self._learning = threading.Lock()  # one refit at a time
        self._pending: list[_Doc] = []  # replies waiting for the next refit
        self._pending_lock = threading.Lock()
        self._recent: deque[np.ndarray] = deque(maxlen=RECENT_TICKETS)
        self._recent_lock = threading.Lock()
        self.uncovered_share = self.options.uncovered_share or DEFAULT_UNCOVERED_SHARE  # the latest estimate
        self.feedback_share = DEFAULT_UNCOVERED_SHARE  # what the verdicts on automatic answers last showed
        self._feedback_failing = False
        self._resized_logged = False  # vectors of another size than the index's were met (`_vectors`)

    @property
    def size(self) -> int:
        return len(self._index.docs)

    @property
    def calibrated(self) -> bool:
        return self._calibrator is not None

    @property
    def share_from_reopens(self) -> bool:
        """Whether the verdicts on automatic answers set the share last scored for (above the estimate)."""
        return self.feedback_share > DEFAULT_UNCOVERED_SHARE and self.feedback_share >= self.uncovered_share

    def learn(self, customer_text: str, answer_source: str, answer: str, *,
              requester_name: str | None = None) -> None:
        """Add a reply a person approved or wrote, so a similar ticket can be answered from it next time (or, with
        `answer_source` REJECTED and no answer, the question of a draft an agent rejected: see REJECTED); when
        this returns, it is learnt. `requester_name`: the customer the reply was written for, whose name in it
        ("Thanks for waiting, Ana") is another customer's detail to anyone else (`_reply`). Refits the index and
        the chooser and swaps them in together, so concurrent assessments see either the old pair or the new one;
        the calibrator is kept (it scores the shape of the evidence, not the documents themselves). A refit takes
        seconds on a long history (about 5 s of CPU for 10,000 past tickets), so replies that arrive while one
        runs wait and are learnt together in the next."""
        rejected = answer_source == REJECTED
        if not customer_text.strip() or (not rejected and not answer.strip()):
            return
        if self._lexical is not None:
            self._lexical.learn(customer_text, answer_source, answer, requester_name=requester_name)
        doc = _Doc(label=HANDLED_BY_PERSON, text=customer_text, answer="", kind="rejected") if rejected else \
            _Doc(label=answer_source, text=customer_text, answer=answer, kind="history",
                 names=name_words(requester_name))
        with self._pending_lock:
            self._pending.append(doc)
        with self._learning:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return  # a refit that started after this reply was queued has learnt it
            docs = (*self._index.docs, *batch)
            vectors = self._embedder.embed([d.text for d in docs]) if self._embedder is not None else None
            if self._embedder is not None and vectors is None:
                # Keep the semantic index as it was and the replies for the next learn(); the lexical twin has
                # learnt them and answers while the embeddings server is away.
                with self._pending_lock:
                    self._pending[:0] = batch
                log.warning("embeddings unavailable: %d replies learnt lexically for now", len(batch))
                return
            index = _build_index(docs, self.options, vectors)
            self._index, self._chooser = index, _Chooser.fit(index)

    def assess(self, ticket: Ticket) -> Assessment:
        return self.assess_many([ticket])[0]

    def retrieve(self, ticket: Ticket, *, k: int = 4) -> list[Passage]:
        """The `k` closest distinct answers that share a word with the ticket, closest first."""
        index = self._index
        if index.vectorizer is None:
            return []
        vectors = self._vectors(index, [ticket.customer_text()])
        if index.semantic and vectors is None:
            return self._lexical.retrieve(ticket, k=k)
        query = index.transform([ticket.customer_text()], vectors)
        row = (query @ index.matrix.T).toarray()[0]
        shared = (query[:, :index.words] @ index.matrix[:, :index.words].T).toarray()[0] > 0
        passages: dict[str, Passage] = {}
        for position in np.argsort(-row):
            doc = index.docs[position]
            if row[position] < MIN_RELEVANCE or len(passages) >= k:
                break
            if shared[position] and doc.label != HANDLED_BY_PERSON and doc.label not in passages:
                # The model reads another customer's order number or name no more than that customer's next
                # reply may carry it: the clean reply of the same answer, else what names the case masked.
                text, foreign = _reply(index, ticket, doc.label, int(position))
                passages[doc.label] = Passage(source=doc.label, text=masked(text, foreign),
                                              similarity=round(float(row[position]), 4))
        return list(passages.values())

    def rejected_before(self, ticket: Ticket) -> bool:
        """Is this ticket a near copy of a question whose draft an agent rejected (REJECTED)? For an engine that
        answers otherwise (OpenAI's), which asks before answering."""
        index = self._index
        return bool(len(index.rejected)) and bool(_rejected_before(index, [ticket.customer_text()])[0])

    @property
    def fork_safe(self) -> bool:
        """May a replayed file be matched in forked copies of this engine? Not with an embeddings client: its
        HTTP connections and locks do not survive a fork."""
        return self._embedder is None

    def assess_many(self, tickets: Sequence[Ticket], *,
                    progress: Callable[[int], object] | None = None) -> list[Assessment]:
        """Assess tickets in blocks of matrix products, with one estimate of the share of uncovered questions
        for them all: the simulation replays a whole file at once (matched in forked workers when the engine
        was fitted in processes). `progress(n)` is told as each block of n tickets is matched."""
        index, chooser = self._index, self._chooser
        if index.vectorizer is None or not tickets:
            if progress is not None:
                progress(len(tickets))
            return [Assessment(confidence=0.0, answer=None, answer_source=None, summary=summarize(t)) for t in tickets]
        texts = [t.customer_text() for t in tickets]
        vectors = self._vectors(index, texts)
        if index.semantic and vectors is None:
            return self._lexical.assess_many(tickets, progress=progress)
        spans = [(start, min(start + BLOCK, len(texts))) for start in range(0, len(texts), BLOCK)]
        matches: list[_Match] = []
        if self.fork_safe and self._processes and len(texts) >= PARALLEL_MATCH and forking_helps():
            for block in self._match_forked(index, chooser, texts, spans):
                matches += block
                if progress is not None:
                    progress(len(block))
        else:
            for start, end in spans:
                block = None if vectors is None else vectors[start:end]
                matches += _match_block(index, chooser, index.transform(texts[start:end], block),
                                        [_length(t) for t in texts[start:end]], texts=texts[start:end])
                if progress is not None:
                    progress(end - start)
        confidences, parts = self._confidences(index, matches, texts)
        return [self._assessment(index, ticket, match, confidence, calibration)
                for ticket, match, confidence, calibration in zip(tickets, matches, confidences, parts, strict=True)]

    @staticmethod
    def _match_forked(index: _Index, chooser: _Chooser | None, texts: list[str],
                      spans: list[tuple[int, int]]) -> Iterator[list[_Match]]:
        """The blocks matched on every core, in order."""
        with forked_pool((index, chooser, texts)) as pool:
            yield from pool.map(_match_span_forked, spans)

    def _confidences(self, index: _Index, matches: Sequence[_Match], texts: Sequence[str]
                     ) -> tuple[list[float], list[tuple[float, float] | None]]:
        """Per match: the confidence, and the calibrator's two parts it was made from (None without one)."""
        answered = [i for i, m in enumerate(matches) if m.label is not None]
        confidences = [0.0] * len(matches)
        parts: list[tuple[float, float] | None] = [None] * len(matches)
        if not answered:
            return confidences, parts
        if self._calibrator is not None:
            features = np.vstack([matches[i].features for i in answered])
            share = self._uncovered_share(features)
            right, balanced = self._calibrator.parts(features)
            scores = Calibrator.combine(right, balanced, share)
            for i, r, b in zip(answered, right, balanced, strict=True):
                parts[i] = (float(r), float(b))
        else:
            explain = self.options.explain_content
            scores = [matches[i].heuristic * (_explained(index, texts[i], matches[i].label) if explain else 1.0)
                      for i in answered]
        for i, score in zip(answered, scores, strict=True):
            confidences[i] = round(float(score), 4)
        return confidences, parts

    def _vectors(self, index: _Index, texts: Sequence[str]) -> np.ndarray | None:
        """The texts' sentence vectors to match against `index`, or None (then the lexical twin decides). Vectors
        of another size than the index's (the model behind the name changed since the fit) cannot be matched
        against it: None, logged once; the next fit or learnt reply builds the index at the new size."""
        vectors = self._embedder.embed(texts) if self._embedder is not None else None
        if vectors is not None and index.semantic and vectors.shape[1] != index.dimension:
            if not self._resized_logged:
                self._resized_logged = True
                log.warning("embeddings changed size (%d dimensions where the engine was fitted with %d): deciding "
                            "on lexical evidence until the next fit (logged once)", vectors.shape[1], index.dimension)
            return None
        return vectors

    def _uncovered_share(self, features: np.ndarray) -> float:
        """The share of uncovered questions to score these tickets for: fixed by the options, else estimated
        from them when they are many (a replayed file), else from the most recent tickets assessed (live), and
        then at least what the verdicts on recent automatic answers show (`share_from_feedback`)."""
        if self.options.uncovered_share is not None:
            return self.options.uncovered_share
        with self._recent_lock:
            if len(features) >= MIN_TICKETS_TO_ESTIMATE:
                share = self._calibrator.estimate_uncovered_share(features)
            else:
                self._recent.extend(features)
                share = self._calibrator.estimate_uncovered_share(np.vstack(self._recent))
                if self._feedback is not None:
                    share = max(share, self._share_from_feedback())
            self.uncovered_share = share
            return share

    def _share_from_feedback(self) -> float:
        try:
            verdicts = self._feedback()
        except Exception:
            # Keep what the verdicts last showed (the safe side), and say so once per outage, not per ticket.
            if not self._feedback_failing:
                log.exception("verdicts on automatic answers unreadable; scoring for the share they last showed "
                              "(%.0f%%) until they can be read", self.feedback_share * 100)
            self._feedback_failing = True
            return self.feedback_share
        self._feedback_failing = False
        share = share_from_feedback(verdicts)
        if share != self.feedback_share:
            log.info("share of uncovered questions from %d verdicts on automatic answers: %.0f%%", len(verdicts),
                     share * 100)
            self.feedback_share = share
        return share

    @staticmethod
    def _assessment(index: _Index, ticket: Ticket, match: _Match, confidence: float,
                    calibration: tuple[float, float] | None = None) -> Assessment:
        summary = summarize(ticket)
        if match.label is None:
            return Assessment(confidence=0.0, answer=None, answer_source=None, summary=summary,
                              evidence=match.evidence, rejected_before=match.rejected)
        answer, foreign = _reply(index, ticket, match.label, match.answer_position)
        return Assessment(confidence=confidence, answer=answer, answer_source=match.label, summary=summary,
                          evidence=match.evidence, topic=match.label, calibration=calibration,
                          foreign_details=foreign)


def _reply(index: _Index, ticket: Ticket, label: str, position: int) -> tuple[str, tuple[str, ...]]:
    """The reply to send for the chosen answer, greeting this customer (`bot.text.addressed_to`) and without the
    sign-off of the agent who wrote a past reply (`bot.text.without_sign_off`), and what in it
    belongs to another customer's case: an email or number (`bot.text.details`) that is not in this ticket and
    not standard for the answer (in its article, or in the replies of two past tickets), or the name of the
    customer a past reply was written for. The nearest document's reply is the first choice; when it names
    another case, another reply with the same answer that names none is sent instead (the article's own text
    first, then the wording most of the answer's replies share), and when there is none, what it names is said
    (the policy then lets a person look first)."""
    nearest = index.docs[position]
    own: list[frozenset[str]] = []  # this ticket's details, read only when a reply names any
    own_names = {w.lower() for w in name_words(ticket.requester_name)}

    def named(doc: _Doc) -> tuple[str, tuple[str, ...]]:
        text = addressed_to(doc.answer, ticket.requester_name)
        if doc.kind != "article":
            # A past reply was signed by the agent who wrote it ("Best, Sam"): sent to someone else by Seam, it
            # would claim Sam wrote it. The helpdesk adds its own signature for Seam's user where it is set.
            text = without_sign_off(text)
        # Read off the reply as written (a first name holds no digits or "@"): the cache stays one entry per reply.
        found = _details_of(index, doc.answer)
        if found:
            if not own:
                own.append(own_details(ticket))
            found = found - own[0] - _standard_details(index, label)
        names = [n for n in doc.names if n.lower() not in own_names and re.search(rf"\b{re.escape(n)}\b", text)]
        return text, (*sorted(found), *names)

    text, foreign = named(nearest)
    if not foreign:
        return text, ()
    docs = [index.docs[i] for i in index.answer_docs[index.answer_of[label]]]
    shared = defaultdict(int)
    for doc in docs:
        shared[" ".join(doc.answer.split())] += 1
    for doc in sorted(docs, key=lambda d: (d.kind != "article", -shared[" ".join(d.answer.split())])):
        other, other_foreign = named(doc)
        if doc.answer.strip() and not other_foreign:
            return other, ()
    return text, foreign


def _details_of(index: _Index, text: str) -> frozenset[str]:
    """`bot.text.details` of a document's reply, remembered (many tickets get the same reply)."""
    cache = index.cache.setdefault("details", {})
    found = cache.get(text)
    if found is None:
        found = cache[text] = details(text)
    return found


def _standard_details(index: _Index, label: str) -> frozenset[str]:
    """The details that are part of an answer rather than of one case: in its article (every passage's reply is
    the article's text), or in the replies of at least two of its documents — a support line's number, say."""
    cache = index.cache.setdefault("standard_details", {})
    found = cache.get(label)
    if found is None:
        counts: dict[str, int] = defaultdict(int)
        for position in index.answer_docs[index.answer_of[label]]:
            doc = index.docs[position]
            for detail in _details_of(index, doc.answer):
                counts[detail] += 2 if doc.kind == "article" else 1
        found = cache[label] = frozenset(d for d, n in counts.items() if n >= 2)
    return found


def _length(text: str) -> int:
    return len(text.split())


def _explained(index: _Index, text: str, label: str) -> float:
    """The share of the question's content the answer's passages and past tickets explain (bot.engine.wording),
    each word weighted by its inverse document frequency; a word no document uses weighs what a word in none of
    them would (scikit-learn's smoothed idf at a document frequency of 0)."""
    words = index.word_terms()
    row = index.answer_of[label]
    columns = index.answer_words.indices[index.answer_words.indptr[row]:index.answer_words.indptr[row + 1]]
    known = frozenset(words.terms[column] for column in columns)
    return explained_share(text, known, words.weights, words.unknown_weight)


@dataclass(frozen=True)
class _Match:
    """The chosen answer for one query and the shape of the evidence behind it."""

    label: str | None  # None: nothing relevant, or similar tickets are handled by people
    answer_position: int | None
    features: np.ndarray
    heuristic: float  # closeness × agreement: with `_explained`, the score used without history to calibrate on
    evidence: tuple[dict, ...]
    rejected: bool = False  # a near copy of a question whose draft an agent rejected (REJECTED): no answer


FEATURES = ("relevance", "top_similarity", "agreement", "margin", "support", "person_share", "is_top1",
            "from_article", "query_words", "chooser_score", "chooser_lead", "chooser_agrees", "unexplained",
            "unexplained_words")
ROW_FEATURES = len(FEATURES) - 2  # the last two are added for a whole block (`_unexplained`)
# How P(right | evidence, covered) moves with each feature, all else equal (bot.engine.monotone): closer documents
# with the answer, more neighbours and a wider margin for it, the chooser surer of it, never lower it; a bigger
# vote for "a person handled it" and more of the question left unexplained never raise it. Free (0): the
# nearest document's closeness (it speaks for the answer when that document has it, against it when another
# answer's does), whether the answer is an article, and the question's length. P(uncovered | evidence) moves the
# other way with each.
FEATURE_DIRECTIONS = (1, 0, 1, 1, 1, -1, 1, 0, 0, 1, 1, 1, -1, -1)


def _match_block(index: _Index, chooser: _Chooser | None, queries, lengths: Sequence[int], *,
                 hidden: Sequence[Sequence[int]] | None = None, texts: Sequence[str] | None = None) -> list[_Match]:
    """Match a block of L2-normalised query rows against the index, optionally hiding, per row, some documents
    (when calibrating: the query itself, or every document of its answer)."""
    similarities = (queries @ index.matrix.T).toarray()
    if index.options.hard_gate:
        # Character n-grams forgive typos but also link unrelated words ("fnord" ~ "password"): under the hard
        # gate a match must share at least one real word with the ticket.
        shared = (queries[:, :index.words] @ index.matrix[:, :index.words].T).toarray() > 0
        similarities[~shared] = np.minimum(similarities[~shared], 0.0)
    for row, columns in enumerate(hidden or ()):
        similarities[row, columns] = -1.0
    blocked = np.zeros(len(similarities), dtype=bool)
    if len(index.rejected):
        similarities[:, index.rejected] = -1.0
        if texts is not None:  # new tickets (calibration examples are never blocked)
            blocked = _rejected_before(index, texts)
    choices = chooser.choose(queries) if chooser is not None else None
    matches = [_match_row(index, row, length, None if choices is None else (choices[0][i], choices[1][i],
                                                                            choices[2][i]))
               for i, (row, length) in enumerate(zip(similarities, lengths, strict=True))]
    words = queries[:, index.unigrams].tocsr()
    return [replace(match, features=np.r_[match.features, _unexplained(index, words, row, match.label,
                                                                       hidden[row] if hidden else ())])
            if match.label is not None and not blocked[row]
            else replace(match, label=None, answer_position=None, heuristic=0.0, features=np.zeros(len(FEATURES)),
                         rejected=bool(blocked[row]))
            for row, match in enumerate(matches)]


def _rejected_before(index: _Index, texts: Sequence[str]) -> np.ndarray:
    """Per text: is the latest of agents' word on its near copies (numbers aside) a rejection — no reply for
    such a question learnt since? Documents are in the order they were learnt (EngineInputs reads the feedback in
    order; learn() appends)."""
    alike = normalize(index.vectorizer.transform([_numbers_alike(t) for t in texts]))
    near = (alike @ index.verdict_rows.T).toarray() >= REJECTED_NEAR_COPY
    latest = np.where(near, np.arange(near.shape[1]), -1).max(axis=1)
    return (latest >= 0) & index.verdict_rejects[np.maximum(latest, 0)]


def _unexplained(index: _Index, words, row: int, label: str, hidden: Sequence[int]) -> tuple[float, float]:
    """How much of the question the chosen answer's past tickets and passages never mention: the share of the
    question's single-word TF-IDF weight on words no document of that answer holds, and how many such words.
    A question about something the knowledge does not cover ("close my account" where only "open an account"
    is known) usually matches a near answer on most words but leaves its key word unexplained. Hidden documents
    (the question itself, when calibrating) do not count."""
    columns = words.indices[words.indptr[row]:words.indptr[row + 1]]
    weights = words.data[words.indptr[row]:words.indptr[row + 1]]
    if not len(columns) or weights.sum() <= 0:
        return 0.0, 0.0
    answer = index.answer_of[label]
    known = index.answer_words.indices[index.answer_words.indptr[answer]:index.answer_words.indptr[answer + 1]]
    counts = index.answer_words.data[index.answer_words.indptr[answer]:index.answer_words.indptr[answer + 1]]
    position = np.minimum(np.searchsorted(known, columns), max(len(known) - 1, 0))
    present = np.where((len(known) > 0) & (known[position] == columns), counts[position], 0) if len(known) else \
        np.zeros(len(columns), dtype=np.int32)
    hidden = np.asarray(hidden, dtype=int)
    for doc in hidden[index.doc_answer[hidden] == answer] if len(hidden) else ():
        held = index.doc_words.indices[index.doc_words.indptr[doc]:index.doc_words.indptr[doc + 1]]
        present = present - np.isin(columns, held)
    missing = present <= 0
    return float(weights[missing].sum() / weights.sum()), float(np.log1p(missing.sum()))


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
    none = _Match(label=None, answer_position=None, features=np.zeros(ROW_FEATURES), heuristic=0.0,
                  evidence=evidence)
    knn_label = max(votes.items(), key=lambda item: item[1])[0] if votes else None
    label = knn_label if choice is None else str(choice[0])
    near = index.options.near_duplicate
    if near is not None and top_similarity >= near:
        # A near copy of a past ticket (an agent's reply to the same question, learnt last hour) is better
        # evidence than any model of the whole history.
        label = index.docs[top[0]].label
    if label is None or label == HANDLED_BY_PERSON:
        return none
    # The closest document with the chosen answer: its text is what would be sent, its closeness the evidence.
    answer = index.answer_of.get(label)
    with_label = index.answer_docs[answer] if answer is not None else np.array([], dtype=int)
    best = int(with_label[np.argmax(row[with_label])]) if len(with_label) else None
    if best is None or (row[best] < MIN_RELEVANCE and (index.options.hard_gate or choice is None)):
        return none
    relevance = max(0.0, float(row[best]))
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


def share_from_feedback(verdicts: Sequence[Verdict]) -> float:
    """The share of uncovered questions under which the judged automatic answers would have been expected to
    hold as many wrong ones as the customers reopened, within UNCOVERED_SHARE_BOUNDS (no verdicts: the lower
    bound). The calibrator's share is the one part of a confidence fitted to the deployment; when customers
    reopen more answers than the confidences foretold, raising it lowers every confidence on the same evidence —
    the estimate from unlabelled recent tickets runs low (see DEFAULT_UNCOVERED_SHARE), and this is what the
    customers themselves said. A reopen for any other reason counts too: the safe side."""
    low, high = UNCOVERED_SHARE_BOUNDS
    if not verdicts:
        return low
    right = np.array([v.right for v in verdicts], dtype=float)
    balanced = np.clip(np.array([v.balanced for v in verdicts], dtype=float), 1e-6, 1 - 1e-6)
    reopened = sum(v.reopened for v in verdicts)

    def expected_wrong(share: float) -> float:
        return float((1 - Calibrator.combine(right, balanced, share)).sum())

    if expected_wrong(low) >= reopened:
        return low
    if expected_wrong(high) <= reopened:
        return high
    for _ in range(30):  # bisection: the expected count grows with the share
        middle = (low + high) / 2
        low, high = (middle, high) if expected_wrong(middle) < reopened else (low, middle)
    return round(high, 4)


_GRID = np.linspace(0.0, 1.0, 1001)


def _lower_bounds(seen: np.ndarray) -> np.ndarray:
    """For each estimate on `_GRID`, the one-sided lower bound (Wilson, CALIBRATION_Z) of a proportion that
    estimate of as many trials as the covered examples whose estimates (`seen`) lie within CALIBRATION_BAND of it,
    made non-decreasing along the grid."""
    seen = np.sort(seen)
    n = np.maximum(np.searchsorted(seen, _GRID + CALIBRATION_BAND, side="right")
                   - np.searchsorted(seen, _GRID - CALIBRATION_BAND, side="left"), 1).astype(float)
    z2 = CALIBRATION_Z ** 2
    centre = (_GRID + z2 / (2 * n)) / (1 + z2 / n)
    spread = CALIBRATION_Z / (1 + z2 / n) * np.sqrt(_GRID * (1 - _GRID) / n + z2 / (4 * n * n))
    return np.maximum.accumulate(np.clip(centre - spread, 0.0, _GRID))


class Calibrator:
    """P(the chosen answer is right | the shape of the evidence), learnt from the history itself, for the share of
    questions the knowledge does not cover that this deployment actually gets.

    Two kinds of examples, each made by matching past tickets exactly as a new ticket would be matched, with a
    chooser that never saw them:
    - covered: each resolved past ticket against everything else (the index leaves it out; the chooser is
      cross-fitted in folds that each leave out at most one part in `HELD_OUT_PARTS` of it); right when the
      answer found is the one a person actually used;
    - uncovered: the tickets of a third of the answers at a time, with every document of those answers hidden
      and a chooser fitted without them, so the right answer cannot be found and any answer is wrong. This is
      what a question the knowledge does not cover looks like — the case a confident engine gets wrong.
    Two models over spline expansions of the evidence (smooth, so nearly equal tickets keep their order; each
    monotone in the features whose meaning fixes a direction, FEATURE_DIRECTIONS and bot.engine.monotone):
    `right` = P(right | evidence, covered), fitted on covered examples, and `uncovered` = P(uncovered |
    evidence) fitted on both kinds weighted half and half. An uncovered question is never answered right, so
    P(right | evidence) = P(right | evidence, covered) × (1 − P(uncovered | evidence)), where the second factor
    is moved from the half-and-half prior to the deployment's own share of uncovered questions (Bayes' rule on
    the odds). That share is estimated from the tickets being assessed (`estimate_uncovered_share`: the EM of
    Saerens et al. 2002 for a changed prior) — a whole replayed file in the simulation, the recent tickets live —
    and is `DEFAULT_UNCOVERED_SHARE` until there are `MIN_TICKETS_TO_ESTIMATE` of them. P(right | evidence,
    covered) is taken at the lower bound of what its covered examples support, and P(covered | evidence) at the
    lower bound of what all the examples support (CALIBRATION_Z).
    """

    def __init__(self, right, uncovered, seen: np.ndarray | None = None,
                 seen_covered: np.ndarray | None = None) -> None:
        self._right = right
        self._uncovered = uncovered
        # Each factor of a confidence is taken at the lower bound of what its own examples support: `seen`, the
        # covered examples' P(right | evidence, covered); `seen_covered`, every example's P(covered | evidence).
        self._bounded = _lower_bounds(seen) if seen is not None else None
        self._bounded_covered = _lower_bounds(seen_covered) if seen_covered is not None else None

    @staticmethod
    def _model(directions: Sequence[int] = FEATURE_DIRECTIONS):
        return monotone_spline_model(directions, n_knots=5, degree=3, C=1.0)

    @classmethod
    def fit(cls, index: _Index, *, run_folds: FoldRunner | None = None) -> Calibrator | None:
        history = np.array([i for i, d in enumerate(index.docs) if d.kind == "history"])
        if len(history) < MIN_CALIBRATION_EXAMPLES or index.vectorizer is None:
            return None
        covered, uncovered_folds = cls._covered_folds(index, history), cls._uncovered_folds(index, history)
        # Every fold at once, in order: on processes the uncovered folds need not wait for the covered ones.
        results = (run_folds or cls.run_folds_on_threads)(index, covered + uncovered_folds)
        covered_x = [x for features, _ in results[:len(covered)] for x in features]
        covered_y = [y for _, targets in results[:len(covered)] for y in targets]
        targets = np.array(covered_y, dtype=int)
        if len(targets) < MIN_CALIBRATION_EXAMPLES or min(targets.sum(), len(targets) - targets.sum()) < 5:
            return None
        right = cls._model().fit(np.vstack(covered_x), targets)
        seen = right.predict_proba(np.vstack(covered_x))[:, 1]
        uncovered_x = [x for features, _ in results[len(covered):] for x in features]
        uncovered = seen_covered = None
        if len(uncovered_x) >= 5:
            both = np.vstack(covered_x + uncovered_x)
            kinds = np.r_[np.zeros(len(covered_x)), np.ones(len(uncovered_x))].astype(int)
            weights = np.where(kinds == 1, len(covered_x) / len(uncovered_x), 1.0)
            uncovered = cls._model([-d for d in FEATURE_DIRECTIONS]).fit(both, kinds, logistic__sample_weight=weights)
            seen_covered = 1 - uncovered.predict_proba(both)[:, 1]
        return cls(right, uncovered, seen, seen_covered)

    def _balanced(self, features: np.ndarray) -> np.ndarray:
        """P(uncovered | evidence) for traffic half uncovered, as the model was fitted."""
        return np.clip(self._uncovered.predict_proba(features)[:, 1], 1e-6, 1 - 1e-6)

    @staticmethod
    def _uncovered_at(balanced: np.ndarray, share: float) -> np.ndarray:
        """P(uncovered | evidence) for traffic in which `share` of the questions are uncovered."""
        odds = balanced / (1 - balanced) * share / (1 - share)
        return odds / (1 + odds)

    def estimate_uncovered_share(self, features: np.ndarray) -> float:
        """The share of uncovered questions that makes these tickets' evidence most likely (EM on the prior)."""
        if self._uncovered is None or len(features) < MIN_TICKETS_TO_ESTIMATE:
            return DEFAULT_UNCOVERED_SHARE
        balanced = self._balanced(features)
        share = DEFAULT_UNCOVERED_SHARE
        for _ in range(100):
            updated = float(np.clip(self._uncovered_at(balanced, share).mean(), *UNCOVERED_SHARE_BOUNDS))
            if abs(updated - share) < 1e-4:
                return updated
            share = updated
        return share

    def parts(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(right | evidence, covered), at the lower bound of what its covered examples support, and P(uncovered |
        evidence) for half-uncovered traffic, its complement P(covered | evidence) likewise at the lower bound of
        what all the examples support: what a confidence is made of at any share (`combine`). Without an
        uncovered model the second is 0.5, so the share scales the confidence directly."""
        right = self._right.predict_proba(features)[:, 1]
        if self._bounded is not None:
            right = np.interp(right, _GRID, self._bounded)
        balanced = self._balanced(features) if self._uncovered is not None else np.full(len(features), 0.5)
        if self._bounded_covered is not None:
            balanced = np.clip(1 - np.interp(1 - balanced, _GRID, self._bounded_covered), 1e-6, 1 - 1e-6)
        return right, balanced

    @classmethod
    def combine(cls, right: np.ndarray, balanced: np.ndarray, share: float) -> np.ndarray:
        """The confidence from its parts, for traffic in which `share` of the questions are uncovered."""
        return right * (1 - cls._uncovered_at(balanced, share))

    def predict(self, features: np.ndarray, *, uncovered_share: float = DEFAULT_UNCOVERED_SHARE) -> np.ndarray:
        return self.combine(*self.parts(features), uncovered_share)

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
    def _covered_folds(cls, index: _Index, history: np.ndarray) -> list[Fold]:
        everything = np.arange(len(index.docs))
        examples = history
        if len(history) > MAX_COVERED_EXAMPLES:
            # Enough examples to fit a dozen-parameter model; matching every past ticket costs time, not accuracy.
            examples = np.sort(np.random.default_rng(0).choice(history, MAX_COVERED_EXAMPLES, replace=False))
        count = max(1, -(-len(examples) * HELD_OUT_PARTS // len(history)))  # ceiling, in whole numbers
        folds = []
        for fold in range(count):
            queries = examples[fold::count].tolist()
            folds.append((np.setdiff1d(everything, queries), queries, [[i] for i in queries]))
        return folds

    @classmethod
    def _uncovered_folds(cls, index: _Index, history: np.ndarray) -> list[Fold]:
        labels = sorted({index.docs[i].label for i in history} - {HANDLED_BY_PERSON})
        if len(labels) < 3:
            return []
        rng = np.random.default_rng(0)
        folds = []
        for fold in range(UNCOVERED_FOLDS):
            is_hidden = np.isin(index.labels, labels[fold::UNCOVERED_FOLDS])
            hidden_columns = np.flatnonzero(is_hidden).tolist()
            queries = [i for i in history if is_hidden[i]]
            if len(queries) > UNCOVERED_PER_FOLD:
                queries = sorted(rng.choice(queries, UNCOVERED_PER_FOLD, replace=False).tolist())
            folds.append((np.flatnonzero(~is_hidden), queries, [hidden_columns] * len(queries)))
        return folds

    @classmethod
    def run_fold(cls, index: _Index, fold: Fold) -> tuple[list[np.ndarray], list[bool]]:
        """One fold: a chooser fitted on its training rows, then its queries matched with their hidden
        documents; the calibration examples (features, right or not) it gives."""
        train, queries, hidden = fold
        chooser = _Chooser.fit(index, train)
        features, targets = [], []
        for start in range(0, len(queries), BLOCK):
            x, y = cls._examples(index, chooser, queries[start:start + BLOCK], hidden[start:start + BLOCK])
            features += x
            targets += y
        return features, targets

    @classmethod
    def run_folds_on_threads(cls, index: _Index, folds: list[Fold]) -> list[tuple[list[np.ndarray], list[bool]]]:
        """The folds on a few threads (the SVM fits and matrix products release the GIL part of the time), in
        order."""
        with ThreadPoolExecutor(max_workers=CALIBRATION_THREADS) as pool:
            return list(pool.map(lambda fold: cls.run_fold(index, fold), folds))
