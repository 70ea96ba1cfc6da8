"""Sentiment of German financial headlines, from the project's own lexicon (de_lexicon.tsv).

No maintained, commercially usable library scores German market news offline, so the project
keeps its own word list and this scorer. The rules follow VADER's, with VADER's own constants and
normalisation, so a German score reads like the English one: a negation turns a word (×−0.74),
an intensifier or dampener next to it changes its strength, a contrast ("aber") weighs the
clause after it more, and the sum is normalised to −1..1. German needs more: words are matched
case-insensitively with umlauts and ß in either spelling, adjective and noun endings are
stripped, a compound takes the sentiment of its head ("Umsatzeinbruch"), separable verbs are
phrases ("hebt … an"), "nicht" may follow its verb, and the background of a headline ("nach
schwachem Quartal", "trotz Rekordgewinn") weighs less than what happened.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core import checks
from vaderSentiment.vaderSentiment import N_SCALAR, normalize

LEXICON_PATH = Path(__file__).with_name("de_lexicon.tsv")
KINDS = ("word", "head", "phrase", "booster")
VALENCE_LIMIT = 4.0  # VADER's scale
GAP = "*"
GAP_MAX = 5
# Endings tried, longest first, when a word form is not an entry itself: "starkem" -> "stark".
ENDINGS = ("en", "em", "er", "es", "e", "n", "s", "r", "m")
STEM_MIN = 3
# A compound's head (its last part) carries its sentiment when head and first part are this long.
COMPOUND_HEAD_MIN = 4
COMPOUND_FIRST_MIN = 3

NEGATIONS = frozenset(
    ("nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "niemals", "ohne", "weder", "weniger")
)
# A negation reaches this many words back, as in VADER.
NEGATION_REACH = 3
# "nicht nur …, sondern auch" does not negate.
NOT_NEGATING_AFTER_NICHT = frozenset(("nur",))
# The clause after a contrast word weighs 1.5, the one before 0.5 (VADER's "but").
CONTRASTS = frozenset(("aber", "doch", "jedoch", "allerdings"))
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5
# The noun phrase after these is the background of the news, not the news: it weighs half.
BACKGROUND = frozenset(("nach", "trotz"))
BACKGROUND_WEIGHT = 0.5
BACKGROUND_REACH = 4
# A booster two words away from its word acts at this share (VADER's decay).
BOOSTER_DECAY = 0.95

WORD = r"[^\W\d_]+"
WORD_TOKEN = re.compile(rf"{WORD}(?:-{WORD})*")  # "BASF-Aktie" is one token
# A word, or a mark that ends a clause: negations, boosters and phrases stay within their clause.
TOKEN = re.compile(rf"{WORD_TOKEN.pattern}|[,;:.!?–—]|(?<!\S)-(?!\S)")
TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})


class LexiconError(ValueError):
    """A line of the lexicon file that cannot be read; the message names the line."""


def normalise(word: str) -> str:
    """Return the matching form of a word: case-folded (ß -> ss) and with umlauts as ae, oe, ue."""
    return word.casefold().translate(TRANSLITERATION)


@dataclass(frozen=True)
class Entry:
    text: str
    value: float
    kind: str
    line: int


@dataclass(frozen=True)
class Lexicon:
    words: dict[str, Entry]  # by normalised form: kinds word and head
    heads: dict[str, Entry]
    phrases: tuple[tuple[tuple[str, ...], Entry], ...]  # normalised parts, GAP for a gap; longest first
    boosters: dict[str, Entry]

    def __len__(self) -> int:
        return len(self.words) + len(self.phrases) + len(self.boosters)


def lexicon_parse(lines: Iterable[str], *, source: str = "lexicon") -> Lexicon:
    """Return the lexicon of `lines` in the de_lexicon.tsv format; refuse a bad line naming it."""
    words: dict[str, Entry] = {}
    heads: dict[str, Entry] = {}
    phrases: dict[tuple[str, ...], Entry] = {}
    boosters: dict[str, Entry] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue

        def refuse(message: str, number: int = number, line: str = line) -> LexiconError:
            return LexiconError(f"{source}:{number}: {message}: {line!r}")

        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise refuse("expected 2 or 3 TAB-separated columns (entry, value, kind)")
        text, value_text, kind = fields[0], fields[1], fields[2] if len(fields) == 3 else "word"
        if text != text.strip() or not text or kind not in KINDS:
            raise refuse(f"the entry must not be empty or padded, the kind one of {', '.join(KINDS)}")
        try:
            value = float(value_text)
        except ValueError:
            raise refuse("the value is not a number") from None
        if not math.isfinite(value) or not -VALENCE_LIMIT <= value <= VALENCE_LIMIT:
            raise refuse(f"the value must lie between {-VALENCE_LIMIT} and {VALENCE_LIMIT}")
        entry = Entry(text=text, value=value, kind=kind, line=number)
        if kind == "phrase":
            parts = tuple(GAP if part == GAP else normalise(part) for part in text.split(" "))
            literal = [part for part in parts if part != GAP]
            if (
                len(literal) < 2
                or GAP in (parts[0], parts[-1])
                or any(a == b == GAP for a, b in zip(parts, parts[1:], strict=False))
                or not all(re.fullmatch(WORD, part) for part in literal)
            ):
                raise refuse("a phrase is two or more words, single spaces, '*' only between words")
            table: dict[Any, Entry] = phrases
            key: Any = parts
        else:
            if not re.fullmatch(WORD, text):
                raise refuse("a word, head or booster entry is one word of letters")
            key = normalise(text)
            table = boosters if kind == "booster" else words
        if key in table:
            raise refuse(f"duplicate of line {table[key].line} ({table[key].text!r})")
        table[key] = entry
        if kind == "head":
            heads[key] = entry
    ordered = sorted(phrases.items(), key=lambda item: -sum(part != GAP for part in item[0]))
    return Lexicon(words=words, heads=heads, phrases=tuple(ordered), boosters=boosters)


def check_german_lexicon(app_configs: Any = None, **kwargs: Any) -> list[checks.Error]:
    """Django system check: the lexicon file reads, so a bad edit fails `manage.py check`, not an analysis."""
    try:
        with LEXICON_PATH.open(encoding="utf-8") as lines:
            lexicon_parse(lines, source=str(LEXICON_PATH))
    except (OSError, UnicodeDecodeError, LexiconError) as error:
        return [checks.Error(f"The German sentiment lexicon cannot be read: {error}", id="market.E001")]
    return []


@functools.cache
def german_lexicon() -> Lexicon:
    """Return the lexicon in de_lexicon.tsv beside this module."""
    with LEXICON_PATH.open(encoding="utf-8") as lines:
        return lexicon_parse(lines, source=LEXICON_PATH.name)


def _stems(form: str) -> Iterable[str]:
    yield form
    for ending in ENDINGS:
        if form.endswith(ending) and len(form) - len(ending) >= STEM_MIN:
            yield form[: -len(ending)]


def _lookup(table: dict[str, Entry], form: str) -> Entry | None:
    return next((table[stem] for stem in _stems(form) if stem in table), None)


def _word_entry(form: str, lexicon: Lexicon) -> Entry | None:
    """Return the entry of a normalised word form: itself, without an ending, or its compound head."""
    found = _lookup(lexicon.words, form)
    if found is not None:
        return found
    # Longest head first; a neutral entry met on the way ("vorsorge" in "altersvorsorge") ends the search.
    for start in range(COMPOUND_FIRST_MIN, len(form) - COMPOUND_HEAD_MIN + 1):
        found = _lookup(lexicon.words, form[start:])
        if found is not None and (found.kind == "head" or found.value == 0):
            return found
    return None


def _token_entry(form: str, lexicon: Lexicon) -> Entry | None:
    """Return the entry of a token; a hyphenated one is read joined, else by its last part."""
    if "-" not in form:
        return _word_entry(form, lexicon)
    return _word_entry(form.replace("-", ""), lexicon) or _word_entry(form.rsplit("-", 1)[1], lexicon)


@dataclass
class _Token:
    surface: str
    form: str  # normalised
    clause: int


@dataclass
class _Item:
    """A scored word or phrase: its token positions, surface, lexicon entry and valence."""

    positions: list[int]
    surface: str
    entry: Entry
    valence: float


def _tokens(text: str) -> list[_Token]:
    tokens, clause = [], 0
    for match in TOKEN.finditer(text):
        surface = match.group()
        if WORD_TOKEN.fullmatch(surface):
            tokens.append(_Token(surface=surface, form=normalise(surface), clause=clause))
        else:
            clause += 1
    return tokens


def _part_matches(part: str, form: str) -> bool:
    return part in _stems(form)


def _phrase_match(parts: tuple[str, ...], tokens: list[_Token], start: int, taken: set[int]) -> list[int] | None:
    """Return the positions of a phrase's words starting at `start`, gaps as short as they can be."""

    def match(part_index: int, position: int) -> list[int] | None:
        if part_index == len(parts):
            return []
        part = parts[part_index]
        if part == GAP:
            for skip in range(GAP_MAX + 1):
                rest = match(part_index + 1, position + skip)
                if rest is not None:
                    return rest
            return None
        if (
            position >= len(tokens)
            or position in taken
            or tokens[position].clause != tokens[start].clause
            or not _part_matches(part, tokens[position].form)
        ):
            return None
        rest = match(part_index + 1, position + 1)
        return None if rest is None else [position, *rest]

    return match(0, start)


def _items(tokens: list[_Token], lexicon: Lexicon) -> list[_Item]:
    """Return the scored words and phrases in order, their valences changed by the boosters beside them."""
    taken: set[int] = set()
    phrase_items: list[_Item] = []
    for start in range(len(tokens)):
        if start in taken:
            continue
        for parts, entry in lexicon.phrases:
            positions = _phrase_match(parts, tokens, start, taken)
            if positions is not None:
                taken.update(positions)
                surface = " … ".join(" ".join(tokens[p].surface for p in group) for group in _runs(positions))
                phrase_items.append(_Item(positions, surface, entry, entry.value))
                break
    word_items: dict[int, _Item] = {}
    booster_at: dict[int, Entry] = {}
    for position, token in enumerate(tokens):
        if position in taken:
            continue
        word_entry = _token_entry(token.form, lexicon)
        if word_entry is not None and word_entry.value:
            word_items[position] = _Item([position], token.surface, word_entry, word_entry.value)
        booster = _lookup(lexicon.boosters, token.form)
        if booster is not None:
            booster_at[position] = booster
    by_position = {p: item for item in phrase_items for p in item.positions}
    by_position.update({p: item for p, item in word_items.items() if p not in booster_at})
    for position, booster in booster_at.items():
        # The word it precedes, else the one before it; a word that scores on its own ("stark")
        # boosts only a direct neighbour, a pure booster ("deutlich") one two words away too.
        # Other boosters between do not count as words ("steigt sehr stark").
        reach = (1, -1) if position in word_items else (1, -1, -2, 2)
        for offset in reach:
            target_at = _neighbour(position, offset, tokens, skip=booster_at)
            target = by_position.get(target_at) if target_at is not None else None
            if target is not None:
                decay = 1.0 if abs(offset) == 1 else BOOSTER_DECAY
                target.valence = math.copysign(max(0.0, abs(target.valence) + booster.value * decay), target.valence)
                word_items.pop(position, None)
                break
    items = sorted([*phrase_items, *word_items.values()], key=lambda item: item.positions[0])
    return items


def _neighbour(position: int, offset: int, tokens: list[_Token], *, skip: dict[int, Entry]) -> int | None:
    """Return the position `offset` words from `position` in its clause, not counting those in `skip`."""
    step, left, at = (1 if offset > 0 else -1), abs(offset), position
    while left:
        at += step
        if not 0 <= at < len(tokens) or tokens[at].clause != tokens[position].clause:
            return None
        if at not in skip:
            left -= 1
    return at


def _runs(positions: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for position in positions:
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _negated(item: _Item, tokens: list[_Token], items: list[_Item]) -> bool:
    """Say whether a negation turns the item: before it, in a phrase's gap, or "nicht" after it."""
    first, last, clause = item.positions[0], item.positions[-1], tokens[item.positions[0]].clause

    def negation(position: int) -> bool:
        if not 0 <= position < len(tokens) or tokens[position].clause != clause:
            return False
        form = tokens[position].form
        following = tokens[position + 1].form if position + 1 < len(tokens) else ""
        return form in NEGATIONS and not (form == "nicht" and following in NOT_NEGATING_AFTER_NICHT)

    if any(negation(position) for position in range(first - NEGATION_REACH, first)):
        return True
    if any(negation(position) for position in range(first + 1, last) if position not in item.positions):
        return True
    # German puts "nicht" after the finite verb ("steigt nicht", "übertrifft die Erwartungen nicht"):
    # it turns the nearest scored word before it.
    scored = {position for other in items for position in other.positions}
    for position in range(last + 1, min(last + 1 + NEGATION_REACH, len(tokens))):
        if tokens[position].form == "nicht" and negation(position):
            return True
        if position in scored:
            return False
    return False


def _weights(tokens: list[_Token]) -> list[float]:
    """Return each token's weight from contrast words and background phrases."""
    weights = [1.0] * len(tokens)
    contrast = next((p for p, token in enumerate(tokens) if token.form in CONTRASTS and p > 0), None)
    if contrast is not None:
        for position in range(len(tokens)):
            weights[position] = CONTRAST_BEFORE if position < contrast else CONTRAST_AFTER
    for position, token in enumerate(tokens):
        if token.form not in BACKGROUND:
            continue
        # The background ends with its noun: German capitalises it ("nach schwachem Quartal").
        for inner in range(position + 1, min(position + 1 + BACKGROUND_REACH, len(tokens))):
            if tokens[inner].clause != token.clause:
                break
            weights[inner] *= BACKGROUND_WEIGHT
            if tokens[inner].surface[:1].isupper():
                break
    return weights


def german_score(text: str) -> tuple[float, list[dict[str, Any]]]:
    """Return a German text's sentiment in -1..1 and the words that made it, with their valences."""
    lexicon = german_lexicon()
    tokens = _tokens(text)
    items = _items(tokens, lexicon)
    weights = _weights(tokens)
    total, used = 0.0, []
    for item in items:
        valence = item.valence
        if _negated(item, tokens, items):
            valence *= N_SCALAR
        valence *= weights[item.positions[0]]
        if not valence:
            continue
        total += valence
        used.append({"word": item.surface, "entry": item.entry.text, "valence": round(valence, 3)})
    return normalize(total), used
