"""The German financial lexicon (market/sentiment/de_lexicon.tsv) and its scorer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from vaderSentiment.vaderSentiment import normalize

from market import sentiment as sa
from market.demo import DEMO_NEWS
from market.sentiment import german
from realtime.wire.events import get_schema
from tests.fixtures.analysis import add_news
from tests.fixtures.market import make_instrument
from tests.fixtures.ws import login_cookie

D = Decimal
POLARITY = {1: "positive", 0: "neutral", -1: "negative"}


def score(text: str) -> Decimal:
    return sa.headline_score(text=text, language="de")[0]


def entries(text: str) -> list[str]:
    return [used["entry"] for used in sa.headline_score(text=text, language="de")[1]]


# Headlines of known polarity


@pytest.mark.parametrize(
    "headline, direction",
    [
        ("Rheinmetall meldet Rekordumsatz", 1),
        ("Dividendenerhöhung bei der Allianz", 1),
        ("Zalando schreibt schwarze Zahlen", 1),
        ("Goldman stuft Infineon auf Kaufen hoch", 1),  # separable verb: stuft … hoch
        ("Sartorius hebt nach starkem Quartal die Prognose an", 1),
        ("Übernahmeangebot für Covestro", 1),
        ("Umsatz über den Erwartungen", 1),
        ("Aktie legt deutlich zu", 1),
        ("Deutsche Bank verdient mehr als erwartet", 1),
        ("Brenntag will Kosten senken", 1),  # lower costs are good news, unlike "senkt Prognose"
        ("Varta stellt Insolvenzantrag", -1),
        ("Kurssturz bei BASF", -1),
        ("Puma herabgestuft", -1),
        ("Die Bank stuft Puma herab", -1),
        ("Bayer macht Milliardenverlust", -1),  # compound head: Verlust
        ("Umsatzrückgänge in China", -1),  # head in the plural
        ("VW baut weltweit Stellen ab", -1),
        ("Gewinn bleibt hinter den Erwartungen zurück", -1),
        ("Verluste steigen", -1),  # a rising loss is bad news, though "steigen" alone is good
        ("Aktie unter Druck", -1),
        ("Vonovia schreibt Milliarden ab", -1),
        ("Infineon kappt Prognose", -1),
        ("Siemens-Aktie schließt unverändert", 0),
        ("Hauptversammlung der Allianz in München", 0),
        ("Altersvorsorge bei der Allianz", 0),  # a neutral entry ends the compound search: no "Sorge"
        ("Hochtief legt Zahlen vor", 0),  # a company's name, not a "Tief"
    ],
)
def test_german_headlines_of_known_polarity_score_in_their_direction(headline, direction):
    result, used = sa.headline_score(text=headline, language="de")

    assert sa.polarity(result) == POLARITY[direction], (result, used)
    assert -1 <= result <= 1
    assert bool(used) == bool(direction)


def test_a_compound_takes_the_sentiment_of_its_head_and_names_it():
    _, used = sa.headline_score(text="BMW meldet Umsatzeinbruch in China", language="de")

    assert used == [{"word": "Umsatzeinbruch", "entry": "Einbruch", "valence": -2.4}]
    assert score("Gewinn-Warnung bei Zalando") == score("Gewinnwarnung bei Zalando") < 0  # hyphenated: read joined


def test_a_listed_compound_wins_over_its_head():
    assert entries("Zinssenkung beflügelt den Dax")[0] == "Zinssenkung"
    assert score("Zinssenkung") > 0 > score("Kurszielsenkung")


def test_a_phrase_wins_over_its_words_and_names_them():
    _, used = sa.headline_score(text="SAP hebt nach starkem Quartal die Prognose an", language="de")

    assert [(u["word"], u["entry"]) for u in used] == [("hebt … an", "hebt * an"), ("starkem", "stark")]


def test_a_phrase_does_not_reach_across_clauses():
    # "stuft … hoch" would need the "hoch" of the next clause
    assert entries("Bank stuft SAP ein: Kurs auf neuem Hoch") == ["Hoch"]


# Negation


@pytest.mark.parametrize(
    "plain, negated",
    [
        ("Der Gewinn steigt", "Der Gewinn steigt nicht"),  # "nicht" after the verb
        ("Infineon übertrifft die Erwartungen", "Infineon übertrifft die Erwartungen nicht"),
        ("SAP hebt die Prognose an", "SAP hebt die Prognose nicht an"),  # "nicht" in the phrase's gap
        ("Die Bilanz ist gut", "Die Bilanz ist nicht gut"),
        ("Gewinnwarnung bei Siemens", "Keine Gewinnwarnung bei Siemens"),
        ("Stellenabbau bei SAP", "Kein Stellenabbau bei SAP"),
        ("Quartal mit Verlust", "Quartal ohne Verlust"),
    ],
)
def test_a_negation_turns_the_sentiment(plain, negated):
    before, after = score(plain), score(negated)

    assert before * after < 0, (before, after)
    assert abs(after) < abs(before)  # VADER's factor -0.74


def test_nicht_nur_does_not_negate():
    assert score("Nicht nur der Umsatz, auch der Gewinn steigt") == score("Der Gewinn steigt") > 0


def test_a_negation_stays_in_its_clause():
    assert score("Umsatz steigt nicht, Gewinn bricht ein") < score("Gewinn bricht ein") < 0


# Intensifiers and dampeners


def test_intensifiers_strengthen_and_dampeners_weaken_without_turning():
    strong, plain, slight, barely = (
        score(f"Umsatz sinkt {word}".strip()) for word in ("kräftig", "", "leicht", "kaum")
    )

    assert strong < plain < slight < barely < 0
    assert score("Aktie fällt sehr deutlich") < score("Aktie fällt deutlich") < score("Aktie fällt")
    assert score("Gewinn steigt stark") > score("Gewinn steigt") > 0


def test_a_word_that_is_also_an_intensifier_scores_alone_when_nothing_is_beside_it():
    assert entries("Allianz mit starkem Quartal") == ["stark"]
    assert score("Allianz mit starkem Quartal") > 0
    assert entries("Aktie stark gefallen") == ["gefallen"]


# Spelling, case, inflection


@pytest.mark.parametrize(
    "spellings",
    [
        ("Aktie fällt", "Aktie faellt", "AKTIE FÄLLT", "aktie fällt"),
        ("Börsenkurs schließt unverändert", "Boersenkurs schliesst unveraendert", "BÖRSENKURS SCHLIESST UNVERÄNDERT"),
        ("Gewinnwarnung bei BASF", "GEWINNWARNUNG BEI BASF", "gewinnwarnung bei basf"),
        ("Große Verluste", "Grosse Verluste", "GROSSE VERLUSTE"),
        ("Übernahme von Covestro", "Uebernahme von Covestro"),
    ],
)
def test_umlauts_sharp_s_and_case_spell_the_same_words(spellings):
    scores = {score(text) for text in spellings}

    assert len(scores) == 1, dict(zip(spellings, map(score, spellings), strict=True))


def test_adjective_and_noun_endings_find_their_entry():
    assert entries("Allianz nach starkem Jahr") == entries("Allianz starke Zahlen") == ["stark"]
    assert entries("Kursverlusten zum Trotz") == ["Verlust"]
    assert entries("Rheinmetall mit Rekordgewinnen") == ["Rekordgewinn"]


# Clauses: contrast and background


def test_the_clause_after_aber_weighs_more():
    assert score("Umsatz steigt, aber Gewinn bricht ein") < 0 < score("Gewinn bricht ein, aber Umsatz steigt")


def test_the_background_of_the_news_weighs_less_than_the_news():
    assert score("Aktie fällt trotz Rekordgewinn") < 0
    assert score("BMW erholt sich nach schwachem Quartal") > 0


# One scale with VADER


def test_german_scores_are_normalised_as_vaders_compound():
    text = "Infineon verfehlt Erwartungen, Aktie fällt deutlich"
    result, used = sa.headline_score(text=text, language="de")

    assert result == D(str(normalize(sum(u["valence"] for u in used)))).quantize(D("0.0001"))
    # the same valence gives the same score in either language: "profit warning" and
    # "Verlustwarnung" are both -2.6 on VADER's scale
    assert score("Verlustwarnung") == sa.headline_score(text="profit warning", language="en")[0] < 0


# The lexicon file


def test_the_shipped_lexicon_has_one_entry_for_each_line_that_is_not_a_comment():
    lines = german.LEXICON_PATH.read_text(encoding="utf-8").splitlines()
    data_lines = [line for line in lines if line.strip() and not line.startswith("#")]
    lexicon = german.lexicon_parse(lines, source="de_lexicon.tsv")

    assert len(lexicon) == len(data_lines) > 600
    assert all(line == line.rstrip() and "\t" in line for line in data_lines)
    kinds = {entry.kind for entry in [*lexicon.words.values(), *lexicon.boosters.values()]} | {
        entry.kind for _, entry in lexicon.phrases
    }
    assert kinds == set(german.KINDS)


def test_every_value_of_the_shipped_lexicon_lies_on_vaders_scale():
    lexicon = german.german_lexicon()
    values = [e.value for e in lexicon.words.values()] + [e.value for _, e in lexicon.phrases]

    assert all(-4 <= value <= 4 for value in values)
    assert all(-1 <= booster.value <= 1 for booster in lexicon.boosters.values())
    assert min(values) < -2.5 and max(values) > 2  # both directions, strong words on both sides


def test_every_entry_of_the_shipped_lexicon_is_found_by_its_own_spelling():
    # no entry hides another through spelling, endings or a compound head, and no phrase is
    # taken over by another: each one, written alone, scores as itself
    lexicon = german.german_lexicon()
    hidden = [e.text for e in lexicon.words.values() if entries(e.text) != ([e.text] if e.value else [])]
    hidden += [
        e.text for _, e in lexicon.phrases if entries(e.text.replace(" * ", " ")) != ([e.text] if e.value else [])
    ]

    assert hidden == []


@pytest.mark.parametrize(
    "line, message",
    [
        ("Gewinn", "2 or 3 TAB-separated columns"),
        ("Gewinn\t0.6\thead\textra", "2 or 3 TAB-separated columns"),
        ("Gewinn\tviel", "not a number"),
        ("Gewinn\t4.5", "between -4.0 and 4.0"),
        ("Gewinn\tnan", "between -4.0 and 4.0"),
        ("Gewinn\t0.6\tnoun", "the kind one of word, head, phrase, booster"),
        (" Gewinn\t0.6", "must not be empty or padded"),
        ("\t0.6", "must not be empty or padded"),
        ("Gewinn steigt\t1.5", "one word of letters"),
        ("Gewinn2\t1.5", "one word of letters"),
        ("* steigt\t1.5\tphrase", "'*' only between words"),
        ("steigt * *  an\t1.5\tphrase", "'*' only between words"),
        ("steigt\t1.5\tphrase", "two or more words"),
    ],
)
def test_a_bad_lexicon_line_is_refused_naming_its_line(line, message):
    with pytest.raises(german.LexiconError, match=message) as refused:
        german.lexicon_parse(["# comment", "", line], source="test.tsv")

    assert str(refused.value).startswith("test.tsv:3: ")


@pytest.mark.parametrize(
    "first, second",
    [
        ("Gewinn\t0.6", "gewinn\t0.8"),
        ("fällt\t-1.5", "faellt\t-1.5"),
        ("schließt\t0", "schliesst\t0"),
        ("hebt * an\t1.5\tphrase", "Hebt * an\t1.2\tphrase"),
    ],
)
def test_a_duplicate_in_any_spelling_is_refused(first, second):
    with pytest.raises(german.LexiconError, match=r"test.tsv:2: duplicate of line 1"):
        german.lexicon_parse([first, second], source="test.tsv")


def test_a_word_may_be_a_booster_too_and_blank_comment_and_crlf_lines_are_skipped():
    lexicon = german.lexicon_parse(
        ["# header\r\n", "\r\n", "stark\t1.5\r\n", "   \n", "stark\t0.293\tbooster\n", "# stark\t9\n"], source="t"
    )

    assert (lexicon.words["stark"].value, lexicon.boosters["stark"].value, len(lexicon)) == (1.5, 0.293, 2)


def test_manage_py_check_names_a_bad_line_of_the_lexicon(tmp_path, monkeypatch):
    call_command("check")  # the shipped file reads
    broken = tmp_path / "de_lexicon.tsv"
    broken.write_text("# a comment\nGewinn\t0.6\thead\ngewinn\t0.8\n", encoding="utf-8")
    monkeypatch.setattr(german, "LEXICON_PATH", broken)

    with pytest.raises(SystemCheckError, match=r"market.E001.*de_lexicon.tsv:3: duplicate of line 2"):
        call_command("check")


# The analysis of German demo headlines, explained


GERMAN_DEMO = [
    (symbol, hours, headline) for symbol, news in DEMO_NEWS.items() for hours, lang, headline in news if lang == "de"
]
# The demo headlines are made up to show each verdict; these are the ones they show.
DEMO_DIRECTION = {
    "SAP übertrifft die Erwartungen und hebt die Prognose an": 1,
    "SAP von Analysten hochgestuft": 1,
    "Siemens-Aktie stabil nach Hauptversammlung": 1,
    "Allianz erhöht Dividende nach starkem Jahr": 1,
    "Gewinnwarnung: BASF-Aktie bricht ein": -1,
    "BASF kündigt Stellenabbau an": -1,
    "BMW erholt sich nach schwachem Quartal": 1,
    "Telekom wächst in den USA kräftig": 1,
    "Mercedes verfehlt Erwartungen im Quartal": -1,
    "Infineon senkt Umsatzprognose": -1,
}


def test_every_german_demo_headline_scores_in_its_direction_with_the_words_behind_it():
    assert {headline for _, _, headline in GERMAN_DEMO} == set(DEMO_DIRECTION)
    for _, _, headline in GERMAN_DEMO:
        result, used = sa.headline_score(text=headline, language="de")
        assert sa.polarity(result) == POLARITY[DEMO_DIRECTION[headline]], (headline, result, used)
        assert used and all(u["word"] and u["entry"] for u in used)


@pytest.mark.django_db(transaction=True)
async def test_a_sentiment_analysis_of_german_demo_headlines_explains_its_result(ws_connect, staff_user):
    basf = await sync_to_async(make_instrument)(symbol="BAS", name="BASF")
    for symbol, hours, headline in GERMAN_DEMO:
        if symbol == "BAS":
            await sync_to_async(add_news)(basf, headline, language="de", hours_ago=hours)
    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected

    response = await client.command("start_analysis", {"symbol": "BAS", "analysis_type": "sentiment"})

    assert response["data"]["status"] == "success", response
    data = get_schema("analysis.complete").validate((await client.receive_event("analysis.complete"))["data"])
    result = data["result"]
    assert (data["analysis_type"], data["recommendation"]) == ("sentiment", "sell")
    assert (result["items"], result["languages"], result["polarity"]["negative"]) == (2, ["de"], 2)
    assert result["strongest_positive"] is None
    strongest = result["strongest_negative"]
    assert strongest["headline"] == "Gewinnwarnung: BASF-Aktie bricht ein"
    assert strongest["words"] == ["Gewinnwarnung", "bricht ein"]
    assert strongest["score"] == sa.headline_score(text=strongest["headline"], language="de")[0] < D("-0.5")
    assert [h["words"] for h in result["headlines"]] == [["Gewinnwarnung", "bricht ein"], ["Stellenabbau"]]
