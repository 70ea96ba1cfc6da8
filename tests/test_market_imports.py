"""import_fundamentals, import_news and load_alpha_vantage (against a local stand-in server), and the demo data."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from market.models import Fundamentals, NewsItem
from tests.fixtures.market import make_instrument

pytestmark = pytest.mark.django_db

D = Decimal
FUNDAMENTALS_CSV = """symbol,as_of,source,currency,pe_ratio,pb_ratio,dividend_yield,roe,debt_to_equity,eps,eps_growth,revenue_growth,market_cap
SAP,2025-06-30,annual report,EUR,38.5,6.2,1.05,16.5,0.35,5.60,18,9.5,265000000000
sie,2025-06-30,annual report,eur,17.8,2.6,2.8,15.2,1.1,10.05,6,,
"""
NEWS_CSV = """symbol,published_at,source,headline,summary,language,url
SAP,2025-03-01T09:30:00+01:00,Wire,"SAP übertrifft die Erwartungen, Aktie steigt",,de,https://news.example/1
SIE,2025-03-01T10:00:00Z,Wire,Siemens shares slump,Orders fell.,en,
"""


@pytest.fixture
def sap_and_sie(db):
    return make_instrument(), make_instrument(symbol="SIE", isin="DE0007236101", name="Siemens AG")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_fundamentals_from_csv_stores_exact_figures_and_leaves_empty_ones_missing(tmp_path, sap_and_sie, capsys):
    call_command("import_fundamentals", str(write(tmp_path, "f.csv", FUNDAMENTALS_CSV)))

    sap = Fundamentals.objects.get(instrument__symbol="SAP")
    assert (sap.pe_ratio, sap.dividend_yield, sap.market_cap, sap.source) == (
        D("38.5"),
        D("1.05"),
        D("265000000000"),
        "annual report",
    )
    sie = Fundamentals.objects.get(instrument__symbol="SIE")
    assert (sie.currency, sie.revenue_growth, sie.market_cap) == ("EUR", None, None)
    assert "2 records of 2 instruments" in capsys.readouterr().out
    # a second import of the same date replaces, never duplicates
    call_command("import_fundamentals", str(write(tmp_path, "f.csv", FUNDAMENTALS_CSV.replace("38.5", "40"))))
    assert Fundamentals.objects.count() == 2
    assert Fundamentals.objects.get(instrument__symbol="SAP").pe_ratio == D("40")


def test_import_fundamentals_from_json_reads_numbers_exactly(tmp_path, sap_and_sie):
    records = '[{"symbol": "SAP", "as_of": "2025-06-30", "source": "manual", "pe_ratio": 0.1234, "roe": 16.5}]'

    call_command("import_fundamentals", str(write(tmp_path, "f.json", records)))

    sap = Fundamentals.objects.get()
    assert (sap.pe_ratio, sap.roe, sap.pb_ratio) == (D("0.1234"), D("16.5"), None)


@pytest.mark.parametrize(
    "line, message",
    [
        ("SAP,2025-06-30,r,EUR,abc,,,,,,,,", "line 2: 'pe_ratio' must be a number"),
        ("SAP,2025-06-30,r,EUR,NaN,,,,,,,,", "line 2: 'pe_ratio' must be a finite number"),
        ("SAP,2025-06-30,r,EUR,1.23456,,,,,,,,", "line 2: 'pe_ratio' may have at most 4 decimals"),
        ("SAP,2025-06-30,r,EUR,,,150,,,,,,", "line 2: 'dividend_yield' must lie between 0 and 100"),
        ("SAP,2025-06-30,r,EUR,,,,,-1,,,,", "line 2: 'debt_to_equity' must lie between 0 and 10000"),
        ("SAP,2025-06-30,r,EUR,,,,,,,,-101,", "line 2: 'revenue_growth' must lie between -100"),
        ("SAP,2025-06-30,r,EUR,,,,,,,,,1.5", "line 2: 'market_cap' may have at most 0 decimals"),
        ("SAP,30.06.2025,r,EUR,,,,,,,,,", "line 2: 'as_of' must be a date YYYY-MM-DD"),
        ("SAP,2999-01-01,r,EUR,,,,,,,,,", "line 2: 'as_of' 2999-01-01 lies in the future"),
        ("SAP,2025-06-30,,EUR,,,,,,,,,", "line 2: 'source' is required"),
        ("SAP,2025-06-30,r,EURO,,,,,,,,,", "line 2: 'currency' must be a three-letter code"),
        ("SAP,2025-06-30,r,EUR,,,,,,,,,,extra", "line 2: more values than the header has columns"),
        ("NOPE,2025-06-30,r,EUR,10,,,,,,,,", "Unknown symbols: NOPE"),
    ],
)
def test_a_bad_fundamentals_line_is_named_and_nothing_is_imported(tmp_path, sap_and_sie, line, message):
    header = FUNDAMENTALS_CSV.splitlines()[0]
    good = "SIE,2025-06-30,r,EUR,17,,,,,,,,"
    path = write(tmp_path, "f.csv", f"{header}\n{line}\n{good}\n")

    with pytest.raises(CommandError) as refused:
        call_command("import_fundamentals", str(path))

    assert message in str(refused.value)
    assert "Nothing imported" in str(refused.value) or "nothing imported" in str(refused.value)
    assert Fundamentals.objects.count() == 0


def test_every_bad_record_is_listed_with_its_place(tmp_path, sap_and_sie):
    records = json.dumps(
        [
            {"symbol": "SAP", "as_of": "2025-06-30", "source": "r", "pe_ratio": "x"},
            {"symbol": "SAP", "as_of": "2025-06-30", "source": "r", "colour": "blue"},
            {"symbol": "SIE", "as_of": "2025-06-30", "source": "r", "roe": True},
            "not an object",
        ]
    )

    with pytest.raises(CommandError) as refused:
        call_command("import_fundamentals", str(write(tmp_path, "f.json", records)))

    text = str(refused.value)
    assert text.startswith("4 of 4 records refused; nothing imported.")
    for expected in (
        "record 1: 'pe_ratio'",
        "record 2: Unknown fields: colour",
        "record 3: 'roe'",
        "record 4: A record must be an object",
    ):
        assert expected in text


def test_the_same_instrument_and_date_twice_in_one_file_is_refused(tmp_path, sap_and_sie):
    header = FUNDAMENTALS_CSV.splitlines()[0]
    path = write(tmp_path, "f.csv", f"{header}\nSAP,2025-06-30,r,EUR,10,,,,,,,,\nSAP,2025-06-30,r,EUR,11,,,,,,,,\n")

    with pytest.raises(CommandError, match="line 3: SAP 2025-06-30 appears already at line 2"):
        call_command("import_fundamentals", str(path))
    assert Fundamentals.objects.count() == 0


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("f.txt", "x", "must end in .csv or .json"),
        ("f.json", "{not json", "is not valid JSON"),
        ("f.json", '{"symbol": "SAP"}', "must hold a JSON list"),
        ("f.json", "[NaN]", "is not valid JSON"),
        ("f.csv", "", "has no header line"),
        ("f.json", "[]", "holds no records"),
    ],
)
def test_unreadable_files_are_refused_as_a_whole(tmp_path, sap_and_sie, name, text, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_fundamentals", str(write(tmp_path, name, text)))


def test_a_missing_file_or_binary_file_is_refused(tmp_path, sap_and_sie):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_news", str(tmp_path / "absent.csv"))
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_news", str(binary))


def test_the_command_exits_1_with_the_errors_and_no_traceback(tmp_path):
    path = write(tmp_path, "f.csv", "symbol,as_of,source\nSAP,yesterday,r\n")

    finished = subprocess.run(
        [sys.executable, "manage.py", "import_fundamentals", str(path)],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 1
    assert "line 2: 'as_of' must be a date YYYY-MM-DD" in finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout


def test_import_news_stores_items_once_with_their_language(tmp_path, sap_and_sie, capsys):
    path = write(tmp_path, "n.csv", NEWS_CSV)

    call_command("import_news", str(path))
    call_command("import_news", str(path))

    assert NewsItem.objects.count() == 2
    assert "0 new items, 2 already stored" in capsys.readouterr().out
    sap = NewsItem.objects.get(instrument__symbol="SAP")
    assert (sap.language, sap.url, sap.summary) == ("de", "https://news.example/1", "")
    assert sap.published_at.isoformat() == "2025-03-01T08:30:00+00:00"


@pytest.mark.parametrize(
    "line, message",
    [
        ("SAP,2025-03-01T09:30:00,Wire,Headline,,de,", "'published_at' must be an ISO 8601 time with a time zone"),
        ("SAP,2999-03-01T09:30:00Z,Wire,Headline,,de,", "'published_at' 2999-03-01T09:30:00Z lies in the future"),
        (
            "SAP,0001-01-01T00:00:00+01:00,Wire,Headline,,de,",
            "'published_at' must be an ISO 8601 time with a time zone",
        ),
        (
            "SAP,9999-12-31T23:59:59-01:00,Wire,Headline,,de,",
            "'published_at' must be an ISO 8601 time with a time zone",
        ),
        ("SAP,2025-03-01T09:30:00Z,Wire,,,de,", "'headline' is required"),
        ("SAP,2025-03-01T09:30:00Z,Wire,Headline,,fr,", "'language' must be one of de, en"),
        ("SAP,2025-03-01T09:30:00Z,Wire,Headline,,de,javascript:alert(1)", "'url' must be an http or https address"),
        ("SAP,2025-03-01T09:30:00Z,Wire," + "x" * 501 + ",,de,", "'headline' may be at most 500 characters"),
    ],
)
def test_a_bad_news_line_is_named_and_nothing_is_imported(tmp_path, sap_and_sie, line, message):
    header = NEWS_CSV.splitlines()[0]
    path = write(tmp_path, "n.csv", f"{header}\nSIE,2025-03-01T10:00:00Z,Wire,Fine,,en,\n{line}\n")

    with pytest.raises(CommandError) as refused:
        call_command("import_news", str(path))

    assert f"line 3: {message}" in str(refused.value)
    assert NewsItem.objects.count() == 0


def test_news_provider_scores_are_checked(tmp_path, sap_and_sie):
    records = '[{"symbol": "SAP", "published_at": "2025-03-01T10:00:00Z", "source": "w", "headline": "h", "language": "en", "provider_score": 1.5}]'

    with pytest.raises(CommandError, match="record 1: 'provider_score' must lie between -1 and 1"):
        call_command("import_news", str(write(tmp_path, "n.json", records)))


# Alpha Vantage, asked at a stand-in server on this machine


class AlphaVantageStandIn(BaseHTTPRequestHandler):
    answers: dict[tuple[str, str], object] = {}
    asked: list[dict[str, list[str]]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        query = parse_qs(urlparse(self.path).query)
        self.asked.append(query)
        key = (query["function"][0], (query.get("symbol") or query.get("tickers"))[0])
        answer = self.answers.get(key, {})
        body = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def alpha_vantage(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlphaVantageStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    AlphaVantageStandIn.answers, AlphaVantageStandIn.asked = {}, []
    settings.MARKET = {
        **settings.MARKET,
        "ALPHA_VANTAGE_URL": f"http://127.0.0.1:{server.server_address[1]}/query",
        "ALPHA_VANTAGE_API_KEY": "test-key",
    }
    yield AlphaVantageStandIn
    server.shutdown()
    server.server_close()


def test_load_alpha_vantage_stores_overview_and_news_of_the_mapped_ticker(alpha_vantage, sap_and_sie, capsys):
    from tests.test_market_fundamentals import OVERVIEW
    from tests.test_market_sentiment import NEWS

    alpha_vantage.answers = {
        ("OVERVIEW", "SAP.DEX"): OVERVIEW,
        ("NEWS_SENTIMENT", "SAP.DEX"): {
            "feed": [
                {**NEWS["feed"][0], "ticker_sentiment": [{"ticker": "SAP.DEX", "ticker_sentiment_score": "0.4512"}]}
            ]
        },
    }

    call_command("load_alpha_vantage", "SAP=SAP.DEX")

    figures = Fundamentals.objects.get(instrument__symbol="SAP")
    assert (figures.source, figures.pe_ratio, figures.dividend_yield, figures.debt_to_equity) == (
        "alpha_vantage",
        D("38.52"),
        D("1.05"),
        None,
    )
    news = NewsItem.objects.get(instrument__symbol="SAP")
    assert (news.headline, news.provider_score, news.language) == ("SAP beats estimates", D("0.4512"), "en")
    assert {q["apikey"][0] for q in alpha_vantage.asked} == {"test-key"}
    assert "1 new items" in capsys.readouterr().out


def test_load_alpha_vantage_names_a_refusal_and_still_stores_the_other_symbols(alpha_vantage, sap_and_sie):
    from tests.test_market_fundamentals import OVERVIEW

    alpha_vantage.answers = {
        ("OVERVIEW", "SAP"): {"Note": "Our standard API rate limit is 25 requests per day."},
        ("OVERVIEW", "SIE"): {**OVERVIEW, "Symbol": "SIE"},
        ("OVERVIEW", "ALV"): b"<html>not json</html>",
    }

    with pytest.raises(CommandError) as refused:
        call_command("load_alpha_vantage", "SAP", "SIE", "ALV", "--only", "fundamentals")

    text = str(refused.value)
    assert "SAP fundamentals: Alpha Vantage answered: Our standard API rate limit" in text
    assert "ALV fundamentals: OVERVIEW: the answer is not JSON" in text
    assert "SIE" not in text
    assert list(Fundamentals.objects.values_list("instrument__symbol", flat=True)) == ["SIE"]


def test_load_alpha_vantage_without_a_key_is_refused(settings, sap_and_sie):
    settings.MARKET = {**settings.MARKET, "ALPHA_VANTAGE_API_KEY": ""}

    with pytest.raises(CommandError, match="No Alpha Vantage key"):
        call_command("load_alpha_vantage", "SAP")


def test_load_alpha_vantage_reports_an_unreachable_server(settings, sap_and_sie):
    from tests.fixtures.servers import free_port

    settings.MARKET = {
        **settings.MARKET,
        "ALPHA_VANTAGE_URL": f"http://127.0.0.1:{free_port()}/query",
        "ALPHA_VANTAGE_API_KEY": "k",
    }

    with pytest.raises(CommandError, match="SAP news: NEWS_SENTIMENT: .*refused"):
        call_command("load_alpha_vantage", "SAP", "--only", "news")


# Demo data


def test_demo_data_seeds_demo_figures_and_headlines_once_and_every_analysis_completes(
    tmp_path, monkeypatch, django_user_model
):
    from market.analysis import analysis_run, analysis_start
    from django.conf import settings

    monkeypatch.setattr(settings, "DEMO_LOGIN_FILE", tmp_path / "login.txt")
    call_command("demo_data")
    counts = (Fundamentals.objects.count(), NewsItem.objects.count())
    call_command("demo_data")

    assert (Fundamentals.objects.count(), NewsItem.objects.count()) == counts
    assert counts[0] == 8 and counts[1] >= 16
    assert set(Fundamentals.objects.values_list("source", flat=True)) == {"demo"}
    assert set(NewsItem.objects.values_list("source", flat=True)) == {"demo"}
    assert set(NewsItem.objects.values_list("language", flat=True)) == {"de", "en"}
    trader = django_user_model.objects.get(username="desk")
    for analysis_type in ("technical", "fundamental", "sentiment"):
        analysis = analysis_start(user=trader, symbol="SAP", analysis_type=analysis_type, parameters={})
        done = analysis_run(analysis_id=analysis.id)
        assert done.status == "complete" and done.recommendation in ("buy", "sell", "hold")
    assert done.result["strongest_positive"]["headline"]


def test_demo_data_leaves_imported_figures_and_news_alone(tmp_path, monkeypatch, sap_and_sie):
    from django.conf import settings

    monkeypatch.setattr(settings, "DEMO_LOGIN_FILE", tmp_path / "login.txt")
    call_command("import_fundamentals", str(write(tmp_path, "f.csv", FUNDAMENTALS_CSV)))
    call_command("import_news", str(write(tmp_path, "n.csv", NEWS_CSV)))

    call_command("demo_data")
    call_command("demo_data")

    assert Fundamentals.objects.filter(source="annual report").count() == 2
    assert NewsItem.objects.filter(source="Wire").count() == 2
