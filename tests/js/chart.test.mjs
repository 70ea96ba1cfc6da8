// The chart's bar arithmetic, time window, locale formatting and loading, of the compiled
// static/js/chart.js, without a browser (no uPlot: nothing is drawn, the caption is).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  PriceChart,
  applyTick,
  chartSummary,
  columns,
  seriesFromResponse,
  timeAxisFormatter,
  timeWindow,
} from "../../static/js/chart.js";

const MINUTE = 60;
// 2026-03-02 09:00:00 UTC, a whole hour.
const T0 = Date.UTC(2026, 2, 2, 9) / 1000;

function response({ range = "1h", bar_seconds = MINUTE, end = T0 + 3 * MINUTE, bars } = {}) {
  return {
    symbol: "SAP",
    range,
    bar: "1m",
    bar_seconds,
    start: new Date((end - 3600) * 1000).toISOString(),
    end: new Date(end * 1000).toISOString(),
    truncated: false,
    bars: bars ?? [
      { time: T0 + MINUTE, open: "101.00", high: "103.50", low: "100.50", close: "102.00", volume: 7 },
      { time: T0, open: "100.00", high: "101.00", low: "99.00", close: "100.50", volume: 5 },
    ],
  };
}

describe("series from the bars endpoint", () => {
  test("prices become numbers and bars are in time order", () => {
    const series = seriesFromResponse(response());

    assert.deepEqual(series.bars, [
      { time: T0, open: 100, high: 101, low: 99, close: 100.5, volume: 5 },
      { time: T0 + MINUTE, open: 101, high: 103.5, low: 100.5, close: 102, volume: 7 },
    ]);
    assert.equal(series.barSeconds, MINUTE);
    assert.equal(series.spanSeconds, 3600);
    assert.equal(series.loadedUntil, T0 + 3 * MINUTE);
  });

  test("columns are time, open, high, low, close and volume", () => {
    assert.deepEqual(columns(seriesFromResponse(response())), [
      [T0, T0 + MINUTE],
      [100, 101],
      [101, 103.5],
      [99, 100.5],
      [100.5, 102],
      [5, 7],
    ]);
  });
});

describe("live ticks", () => {
  test("a tick in the last bar's minute moves its high, low, close and volume", () => {
    const series = seriesFromResponse(response({ end: T0 + MINUTE + 10 }));

    assert.equal(applyTick(series, { time: T0 + MINUTE + 20, price: 104, volume: 3 }), true);
    assert.equal(applyTick(series, { time: T0 + MINUTE + 30, price: 99.5, volume: 1 }), true);

    assert.deepEqual(series.bars.at(-1), { time: T0 + MINUTE, open: 101, high: 104, low: 99.5, close: 99.5, volume: 11 });
    assert.equal(series.bars.length, 2);
  });

  test("a tick after a quiet spell starts a new bar and leaves the gap empty", () => {
    const series = seriesFromResponse(response({ end: T0 + MINUTE + 10 }));

    applyTick(series, { time: T0 + 4 * MINUTE + 5, price: 105, volume: 2 });

    assert.deepEqual(
      series.bars.map((bar) => bar.time),
      [T0, T0 + MINUTE, T0 + 4 * MINUTE],
    );
    assert.deepEqual(series.bars.at(-1), { time: T0 + 4 * MINUTE, open: 105, high: 105, low: 105, close: 105, volume: 2 });
  });

  test("a tick the loaded bars hold already, an older one and a broken one change nothing", () => {
    const series = seriesFromResponse(response({ end: T0 + MINUTE + 10 }));
    const before = structuredClone(series.bars);

    assert.equal(applyTick(series, { time: T0 + MINUTE + 10, price: 500, volume: 1 }), false);
    assert.equal(applyTick(series, { time: T0 + 5, price: 500, volume: 1 }), false);
    assert.equal(applyTick(series, { time: Number.NaN, price: 500, volume: 1 }), false);
    assert.equal(applyTick(series, { time: T0 + MINUTE + 20, price: Number.NaN, volume: 1 }), false);

    assert.deepEqual(series.bars, before);
  });

  test("bars that leave the range are dropped; with all they stay", () => {
    const quarter = seriesFromResponse(response({ range: "15m", end: T0 + MINUTE + 10 }));
    const all = seriesFromResponse(response({ range: "all", end: T0 + MINUTE + 10 }));

    for (const series of [quarter, all]) applyTick(series, { time: T0 + 15 * MINUTE + 1, price: 105, volume: 2 });

    assert.deepEqual(
      quarter.bars.map((bar) => bar.time),
      [T0 + MINUTE, T0 + 15 * MINUTE],
    );
    assert.equal(all.bars.length, 3);
  });
});

describe("time window and formatting", () => {
  test("a fixed range spans the whole range up to the end of the current bar, however few bars", () => {
    const series = seriesFromResponse(response({ end: T0 + 2 * MINUTE + 30, bars: [response().bars[1]] }));

    assert.deepEqual(timeWindow(series), [T0 + 2 * MINUTE + 30 - 3600, T0 + 2 * MINUTE + 30]);
    applyTick(series, { time: T0 + 2 * MINUTE + 40, price: 100, volume: 1 });
    assert.deepEqual(timeWindow(series), [T0 + 3 * MINUTE - 3600, T0 + 3 * MINUTE]);
  });

  test("all spans the bars", () => {
    const series = seriesFromResponse(response({ range: "all", end: T0 + MINUTE + 10 }));

    assert.deepEqual(timeWindow(series), [T0, T0 + 2 * MINUTE]);
  });

  test("time axis labels follow the page's language and the span", () => {
    const moment = Date.UTC(2026, 2, 2, 14, 5, 9) / 1000;

    assert.equal(timeAxisFormatter("de-DE", 3600, "UTC")(moment), "14:05");
    assert.equal(timeAxisFormatter("en-GB", 900, "UTC")(moment), "14:05:09");
    assert.equal(timeAxisFormatter("de-DE", 3 * 86400, "UTC")(moment), "02.03., 14:05");
    assert.equal(timeAxisFormatter("en-GB", 30 * 86400, "UTC")(moment), "02/03/2026");
  });

  test("the summary names the symbol, the bar count and the last price in the page's language", () => {
    const strings = { chart_summary: "{symbol}: {count} Kerzen, letzter Kurs {last}", chart_empty: "{symbol}: keine Kurse" };
    const series = seriesFromResponse(response());

    assert.equal(chartSummary(series, strings, "de-DE"), "SAP: 2 Kerzen, letzter Kurs 102,00\u00a0€");
    assert.equal(chartSummary({ ...series, bars: [] }, strings, "de-DE"), "SAP: keine Kurse");
  });
});

describe("loading", () => {
  function element() {
    const attributes = new Map();
    return {
      clientWidth: 600,
      textContent: "",
      setAttribute: (name, value) => attributes.set(name, value),
      getAttribute: (name) => attributes.get(name),
    };
  }

  function deferredFetch() {
    const calls = [];
    const fetch = (url) =>
      new Promise((resolve) => {
        calls.push({ url, respond: (body, status = 200) => resolve({ ok: status === 200, status, json: async () => body }) });
      });
    return { calls, fetch };
  }

  test("ticks arriving while the bars load are applied after them, unless the bars hold them", async () => {
    const { calls, fetch } = deferredFetch();
    const target = element();
    const chart = new PriceChart({ target, caption: null, barsUrl: "/api/market/bars", locale: "de-DE", strings: {}, fetch });

    const loading = chart.show("SAP", "1h");
    chart.tick("SAP", T0 + MINUTE + 5, 500, 1); // before the answer's end: counted in it already
    chart.tick("SAP", T0 + 2 * MINUTE + 5, 110, 4); // after it
    chart.tick("SIE", T0 + 2 * MINUTE + 6, 1, 1); // another symbol
    calls[0].respond(response({ end: T0 + 2 * MINUTE }));
    await loading;

    assert.equal(calls[0].url, "/api/market/bars?symbol=SAP&range=1h");
    assert.deepEqual(
      chart.bars.map((bar) => [bar.time, bar.high, bar.close, bar.volume]),
      [
        [T0, 101, 100.5, 5],
        [T0 + MINUTE, 103.5, 102, 7],
        [T0 + 2 * MINUTE, 110, 110, 4],
      ],
    );
    assert.equal(target.getAttribute("aria-busy"), "false");
  });

  test("an answer for a symbol no longer chosen is dropped", async () => {
    const { calls, fetch } = deferredFetch();
    const chart = new PriceChart({ target: element(), caption: null, barsUrl: "/b", locale: "de-DE", strings: {}, fetch });

    const first = chart.show("SAP");
    const second = chart.show("SIE", "all");
    calls[1].respond({ ...response({ range: "all" }), symbol: "SIE" });
    calls[0].respond(response());
    await Promise.all([first, second]);

    assert.equal(calls[1].url, "/b?symbol=SIE&range=all");
    assert.equal(chart.currentRange, "all");
    assert.equal(chart.bars.length, 2);
    chart.tick("SAP", T0 + 10 * MINUTE, 1, 1);
    assert.equal(chart.bars.length, 2, "a SAP tick does not move the SIE chart");
  });

  test("a failed load says so in the caption", async () => {
    const { calls, fetch } = deferredFetch();
    const caption = element();
    const chart = new PriceChart({
      target: element(), caption, barsUrl: "/b", locale: "de-DE", strings: { chart_failed: "{symbol}: Laden fehlgeschlagen" }, fetch,
    });

    const loading = chart.show("SAP");
    calls[0].respond({ error: "x", code: "server_error" }, 500);
    await loading;

    assert.equal(caption.textContent, "SAP: Laden fehlgeschlagen");
    assert.deepEqual(chart.bars, []);
  });
});
