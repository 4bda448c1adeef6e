"""Reading misspelt words in what a customer wrote, for the asks-for-a-person trigger (`bot.policy.triggers`).

`read(text)` gives the text normalised (quotes unified, symbols other than sentence punctuation turned into
spaces; same length, case kept) with each misspelt word replaced by the vocabulary word it stands for. Only
the small vocabulary the trigger's patterns are made of (`VOCABULARY`: person, someone, speak, human, agent,
transfer, callback, with, want, ...) is corrected, and only:

- a word of 3 letters or more, in ASCII letters, that is not itself a word (`VOCABULARY` or `KNOWN`): "tall" or
  "cell" are never read as "talk" or "call";
- split in two when both halves are vocabulary or joining words ("tosomebody": "to somebody"), else to the
  one nearest vocabulary word within a Damerau–Levenshtein distance (an adjacent swap counts as one edit) of 1
  for a vocabulary word of up to 7 letters, 2 for a longer one ("reprsentative", "custmer"). A tie between forms
  of one word ("agentt": agent, agents) reads as the shortest; a tie between two different words corrects
  nothing.

A correction is *doubtful* when a common word is one edit from the misspelling too ("aent" may be "agent" or
"sent", "hhat" "chat" or "that"): `read(text, doubtful=True)` makes those corrections as well, and the
trigger counts what only they reveal as a near miss, never a clear request.

Both word lists were generated once from the English word-frequency list that ships with pyspellchecker 0.9.1
(MIT; counts from OpenSubtitles), keeping words of ASCII letters seen at least 100 times: `KNOWN` holds those
of 3 letters or more within the distance above of a vocabulary word; `RIVALS`, for each vocabulary word, those
within one edit more of it and seen at least half as often as it. The cut-offs were chosen on the benchmark's
dev part; `python -m bench.human_trigger --word-lists <en.json.gz>` regenerates both lists when the vocabulary
changes. No library is needed at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.text import LONG_WORD, allowed_edits, distance

# The words the trigger's patterns are made of. Inflections are listed when the patterns use them.
VOCABULARY: frozenset[str] = frozenset("""
person persons people someone somebody anyone anybody human humans agent agents representative representatives
operator operators manager supervisor staff employee assistant associate worker customer service support
department reception team speak speaking talk talking chat chatting connect contact contacting transfer call
callback calling phone real live actual please else there line through directly robot machine automated
want need would like with wanna
""".split())

# Joining words a run-together token may start or end with ("tosomebody", "speakto").
JOINING: frozenset[str] = frozenset("to a an me my the with i you u".split())


def _by_word(text: str) -> dict[str, tuple[str, ...]]:
    """`word: a b c word2: d e` as {word: (a, b, c), word2: (d, e)}."""
    table: dict[str, list[str]] = {}
    key = ""
    for token in text.split():
        if token.endswith(":"):
            key = token[:-1]
            table[key] = []
        else:
            table[key].append(token)
    return {word: tuple(words) for word, words in table.items()}


# For each vocabulary word, the common words one edit beyond its distance (see the module docstring).
RIVALS: dict[str, tuple[str, ...]] = _by_word("""
actual: actually
agent: age event get rent sent spent went
agents: agency events gets parents
anybody: nobody
assistant: distant
associate: associated associates
automated: activated animated attempted automatic detonated estimated mutated mutilated outdated
call: all came can care kill tell will
callback: aback ballpark bareback calla celibacy cellblock clack comeback fallacy fallback fullback hallmark payback
    playback wallace
calling: killing telling walking
chat: at bat beat boat cab can cap car cast cat cats chain chair chaos charm chase cheap cheat chef chest chew chip
    chop coal coast coat cost crap cut eat fat flat ha had has hat hate hath heat hit hot meat rat sat seat shit
    shot shut than that what
chatting: acting awaiting bathing batting battling beating betting blasting camping caring casting catching causing
    chain chains changing chanting charging charming chasing chatter chattering cheating checking cheering chewing
    chirping choking choosing chopping claiming clothing coaching costing counting cracking crashing craving
    crawling creating cutting dating eating fitting getting hacking handing hanging hating hauling haunting having
    heating hitting hosting hunting hurting lasting letting mating panting parting planting plotting putting
    quitting rattling rotting setting shaking sharing shaving shifting shitting shooting shouting shutting sitting
    skating spitting starting stating tasting thanking waiting wanting wasting
connect: collect concept concert conduct connected correct
contacting: coaching collecting conducting connecting consulting contacted contacts contain containing contains
    continuing donating rotating
customer: costume custody custom customers customs
department: apartment
directly: direct direction director dirty perfectly
else: also case close eyes lose use
employee: employees explode explore
human: man woman
line: alive alone die done find fine fire five give gone hide ice in kind king land late lie life liked likes lived
    lives long lose love lying mind mine nice none one ride ring side since sing time wife win
live: five gave give have leave life love move nice save time wife
manager: anger danger manage managed
need: been never see
operator: creator elevator generator opera operate operated operates operating operation operations operative
    predator senator
operators: elevators generators operate operated operates operating operation operations operative operatives
    predators senators spectators
person: reason
persons: lessons personal reasons
phone: alone done gone home hope none one those whole
please: least leave place
real: dead feel great head hear hell mean read ready really tell well
reception: detention election exception reaction reflection relation section selection
representatives: representation
robot: boot foot roast rob roof room root rot
service: serve survive
somebody: nobody
speak: break spend
speaking: breaking eating heading hearing leaving making paying playing reading saving saying seeing selling sending
    sleeping staying taking wearing
staff: safe stage stand star stars start state stay stays stuff
supervisor: superior superiors supervise survivor
support: suppose
talk: all ask back take tell thank told took
talking: making taking
team: am beat dead deal dear dream eat fear head hear lead mean near read seem steal teach tell ten test than that
    them wear yeah year
there: her here the them then they were where
through: thought
transfer: answer stranger transferred transport
wanna: gonna wants
want: an and at can was what
with: it
worker: border corner former hooker locker order poker woke wonder wore work worked workers works worse
would: could should
""")

# Real words near a vocabulary word, never corrected (see the module docstring for how it was made).
KNOWN: frozenset[str] = frozenset("""
alike alive all anna ant apartment areal assistance assistants assisting associated associates associative automatic
automaton balk ball balling batting beam bike breaking cabling cal calf calla callbacks calls calm calming calving
canna cant carl carting casting cat cell cha chad chafing chaining chairing chalking champing chan chancing changing
chant chanting chap char charging charming charring chart charting chasing chats chattering chaw cheat cheating chit
cine clive clotting coasting coat coating concocting conducting connecting connects contacts containing contesting
contract contracting contrasting convicting costumer could crafting creaking cull culling custer custom customary
customers customs cutting deal deception deceptions deed departmental departments deportment dike dine direct
directed director directory directs dissociate dive ease elise els elsa employ employed employees employer employers
employs exception factual fall fallback falling feed fine five freaking fullback gall galling gent gents give
halfback hall halting hanna hat hating heal heed here hike hitting hive homeboy hone hotting humane ike inception
indirectly iphone jive kike kith kneed lake lane lave leaking lease lice lie lien life liked liken likes lime lin
lina lind lined linen liner lines link lino lint lire lite lived liven liver lives lone love luke machines mall
manage managed managers manages manger manna meal mike mine moderator neal ned needs needy nerd nike nine olive
operate operated operates operatic operation operations orator pall palling pant parson parsons patting peak peaking
peal pealing pearson pecking peed peeking peking peopled peoples perception perking persona personas phat phoned
phones phoney phony pike pine pith pleas pleased pleases pone porker prone rant ratting read realm reals ream reap
rear receptions receptive receptor recession recreation redemption reed reel regal rejection renal representation
representations resection resistant retention rive robots root scatting seal sealing seam searing seating seed
seeking serviced services servile shafting shaking shat shearing shitting shone shutting sine smearing snaking sneak
sneaking soaking someones spacing spanking sparing sparking speaks spear spearing speck speeding spelling spending
spewing spiking spooking spraying spreading squeaking staffs staking stalk stalking steak stealing steam steaming
stiff streaking stuff superior supervise supervised supervises supervision supervisors supervisory supports swatting
swearing sweating tack tacking tailback taking talc tale talks talky tall tam tank tanking task tasking tea teak
teal teams tear teas teat teed teem term that thee theme these thorough though three tine tram transfers transform
trough tweaking veal vine vive waft wait walk walking wall walling walt wan wand wanda wane wang wank wants wart
wast wat watt weed went what where width wine wish wit witch wits wold wont worked workers world worser wound
wreaking yorker zeal
""".split())

_WORD = re.compile(r"[^\W\d_]+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_SYMBOL = re.compile(r"[^\w\s.,!?;:']|_")  # what is neither a letter, a digit, a space nor sentence punctuation


def _deletes(word: str, edits: int) -> set[str]:
    """The word and every string made from it by deleting up to `edits` letters."""
    found, frontier = {word}, {word}
    for _ in range(edits):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


# Deletions index (as in SymSpell): two words within n edits share a string reachable by n deletions from each,
# so a word's candidates are the vocabulary words its own deletions lead to (then checked with `distance`).
_INDEX: dict[str, set[str]] = {}
for _v in VOCABULARY:
    for _d in _deletes(_v, allowed_edits(_v)):
        _INDEX.setdefault(_d, set()).add(_v)


# No longer word can be read as a vocabulary word (at most two edits away) or as two joined words: returning early
# for one gives the same None, and keeps a pasted blob (base64, a log line: 100,000 letters) from costing
# len² deletions of len letters each (_deletes) — gigabytes — and len² letters copied trying every split.
_LONGEST_READABLE = max(2 * max(map(len, VOCABULARY | JOINING)), max(map(len, VOCABULARY)) + 2)


@lru_cache(maxsize=4096)
def correction(word: str) -> tuple[str, bool] | None:
    """The vocabulary word (or two words) a misspelt word stands for, and whether that is sure (none of the word's
    `RIVALS` is one edit away); None when it is a word, or unclear."""
    w = word.lower()
    if len(w) < 3 or len(w) > _LONGEST_READABLE or not w.isascii() or w in VOCABULARY or w in KNOWN:
        return None
    if len(w) >= 5:
        for i in range(1, len(w)):
            head, tail = w[:i], w[i:]
            if (head in VOCABULARY or head in JOINING) and (tail in VOCABULARY or tail in JOINING) and (
                    head in VOCABULARY or tail in VOCABULARY):
                return f"{head} {tail}", True
    best, nearest = LONG_WORD, []
    for v in sorted({v for d in _deletes(w, 2) for v in _INDEX.get(d, ())}):
        d = distance(w, v, allowed_edits(v))
        if d <= allowed_edits(v) and d <= best:
            nearest = [v] if d < best else [*nearest, v]
            best = d
    shortest = min(nearest, key=len, default=None)
    # A tie between forms of one word ("agentt": agent or agents) reads as the shortest; any other tie, as none.
    if not shortest or not all(v.startswith(shortest) for v in nearest):
        return None
    return shortest, not any(distance(w, rival, 1) <= 1 for rival in RIVALS.get(shortest, ()))


@dataclass(frozen=True)
class Reading:
    """A text as the trigger reads it: `corrections` maps each corrected word in `text` back to `source`."""

    source: str  # the normalised text, case kept, as long as what the customer wrote
    text: str  # the same with misspelt vocabulary words corrected
    corrections: tuple[tuple[int, int, int, int], ...] = ()  # (start, end in text, start, end in source)

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Where `text[start:end]` came from in `source`."""
        return self._to_source(start, True), self._to_source(end, False)

    def corrected_in(self, start: int, end: int) -> list[tuple[str, str]]:
        """(as written, as read) for each corrected word inside `text[start:end]`."""
        return [(self.source[s0:s1], self.text[t0:t1]) for t0, t1, s0, s1 in self.corrections
                if t0 < end and t1 > start]

    def _to_source(self, position: int, is_start: bool) -> int:
        shift = 0
        for t0, t1, s0, s1 in self.corrections:
            if position < t0 or (position == t0 and not is_start):
                break
            if position < t1 or (position == t1 and not is_start):
                return s0 if is_start else s1
            shift = s1 - t1
        return position + shift


def normalise(text: str) -> str:
    """Quotes unified and symbols (hyphens, slashes, asterisks, brackets...) as spaces: the same length."""
    return _SYMBOL.sub(" ", text.translate(_QUOTES))


def read(text: str, *, doubtful: bool = False) -> Reading:
    """`text` normalised, its misspelt vocabulary words corrected: the sure corrections, or all of them."""
    source = normalise(text)
    out: list[str] = []
    corrections: list[tuple[int, int, int, int]] = []
    position = length = 0
    for match in _WORD.finditer(source):
        found = correction(match.group(0))
        if found is None or not (found[1] or doubtful):
            continue
        fixed = found[0]
        gap = source[position:match.start()]
        out.append(gap)
        length += len(gap)
        corrections.append((length, length + len(fixed), match.start(), match.end()))
        out.append(fixed)
        length += len(fixed)
        position = match.end()
    out.append(source[position:])
    return Reading(source=source, text="".join(out), corrections=tuple(corrections))
