// The desk's pure logic, compiled: formatting and parsing in the page's locale, exact money
// figures, the portfolio revalued on a tick, the ticket's preview and keys, the blotter, the
// wording of the server's codes, and the reloads after a reconnect.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cancelAllTargets, isOpen, isPartlyFilled, listQuery, openOrdersQuery, orderReason, remainingOf, restingPrice } from "../../static/js/blotter.js";
import { Coalescer, ProbeGate, ResyncPolicy, secondsLeft } from "../../static/js/connection-state.js";
import { formatDecimalInput, formatEuro, formatNumber, formatPercent, parseDecimalInput } from "../../static/js/format.js";
import { alertRuleText, alertText, analysisReasonText, errorText, messageText, reasonText, render } from "../../static/js/i18n.js";
import { divRound, percentOf, units } from "../../static/js/money.js";
import { ConfirmPolicy, distancePercent, isFarFromMarket, keyAction, previewOrder } from "../../static/js/order-ticket.js";
import { PortfolioState } from "../../static/js/portfolio-state.js";

const NBSP = "\u00a0";
const normal = (text) => text.replace(/[\u00a0\u202f]/g, " ");

describe("format", () => {
  test("a change that rounds to zero has no minus sign", () => {
    assert.equal(normal(formatPercent(-0.001, "de-DE")), "0,00 %");
    assert.equal(normal(formatPercent(-0.004, "en-GB")), "0.00 %");
    assert.equal(normal(formatEuro(-0.004, "de-DE")), "0,00 €");
    assert.equal(normal(formatPercent(-0.005, "de-DE")), "-0,01 %");
    assert.equal(normal(formatPercent(1.5, "de-DE")), "+1,50 %");
    assert.equal(formatNumber(-0.00001, "de-DE"), "0");
  });

  test("amounts and numbers follow the locale", () => {
    assert.equal(normal(formatEuro(1234.5, "de-DE")), "1.234,50 €");
    assert.equal(formatEuro(1234.5, "en-GB"), "€1,234.50");
    assert.equal(formatNumber(12.5, "de-DE"), "12,5");
  });

  test("typed decimals are read in the page's locale", () => {
    const ok = (raw, locale) => {
      const parsed = parseDecimalInput(raw, locale);
      assert.ok(parsed.ok, `${raw} in ${locale}: ${JSON.stringify(parsed)}`);
      return parsed.value;
    };
    assert.equal(ok("12,5", "de-DE"), 12.5);
    assert.equal(ok("12.5", "de-DE"), 12.5);
    assert.equal(ok("1.000,25", "de-DE"), 1000.25);
    assert.equal(ok("1.000.000", "de-DE"), 1000000);
    assert.equal(ok(`1${NBSP}000,5`, "de-DE"), 1000.5);
    assert.equal(ok("12.5", "en-GB"), 12.5);
    assert.equal(ok("1,000.25", "en-GB"), 1000.25);
    assert.equal(ok("12,5", "en-GB"), 12.5);
    assert.deepEqual(parseDecimalInput("1.000", "de-DE"), { ok: false, reason: "ambiguous" });
    assert.deepEqual(parseDecimalInput("1,000", "en-GB"), { ok: false, reason: "ambiguous" });
    assert.deepEqual(parseDecimalInput("1,2,3", "de-DE"), { ok: false, reason: "not_a_number" });
    assert.deepEqual(parseDecimalInput("abc", "de-DE"), { ok: false, reason: "not_a_number" });
    assert.deepEqual(parseDecimalInput("  ", "de-DE"), { ok: false, reason: "required" });
    assert.deepEqual(parseDecimalInput("1234567890123456", "de-DE"), { ok: false, reason: "too_precise" });
  });

  test("a number written into a field reads back the same in its locale", () => {
    assert.equal(formatDecimalInput(1234.5, "de-DE"), "1234,5");
    assert.equal(formatDecimalInput("150.0000", "en-GB"), "150");
    for (const locale of ["de-DE", "en-GB"]) {
      const parsed = parseDecimalInput(formatDecimalInput(98765.4321, locale), locale);
      assert.deepEqual(parsed, { ok: true, value: 98765.4321 });
    }
    assert.equal(formatDecimalInput(null, "de-DE"), "");
  });
});

describe("money", () => {
  test("units are exact and round half away from zero", () => {
    assert.equal(units(0.1, 2), 10n);
    assert.equal(units("200.0000", 4), 2000000n);
    assert.equal(units(0.125, 2), 13n);
    assert.equal(units(-0.125, 2), -13n);
    assert.equal(units("abc", 2), null);
    assert.equal(units(1e-7, 8), 10n);
    assert.equal(divRound(5n, 2n), 3n);
    assert.equal(divRound(-5n, 2n), -3n);
    assert.equal(percentOf(1n, 3n), 33.33);
    assert.equal(percentOf(1n, 0n), 0);
  });
});

const SNAPSHOT = {
  portfolio_id: "1",
  total_value: 10100,
  total_change: 100,
  total_change_percent: 5,
  positions_count: 1,
  last_updated: "2026-01-01T10:00:00Z",
  positions: [{ symbol: "SAP", name: "SAP SE", quantity: 10, avg_cost: 200.1, last_price: 210, market_value: 2100, unrealized_pnl: 99 }],
};
const ACCOUNT = {
  cash: "8000.00",
  reserved_cash: "1501.50",
  realized_pnl: "-12.34",
  day_references: { SAP: { price: "205.0000", kind: "previous_close" } },
  fee_rate: "0.001000",
  min_fee: "1.00",
};

describe("portfolio state", () => {
  test("a tick moves the position's price, value and P&L, and the totals", () => {
    const state = new PortfolioState();
    state.applySnapshot(SNAPSHOT);
    state.applyAccount(ACCOUNT);
    let [row] = state.rows();
    assert.deepEqual(
      [row.price, row.marketValue, row.unrealized, row.unrealizedPercent, row.dayChange],
      [210, 2100, 99, 4.95, 50],
    );
    assert.equal(state.applyTick("SAP", 190.55), true);
    [row] = state.rows();
    assert.deepEqual(
      [row.price, row.marketValue, row.unrealized, row.unrealizedPercent, row.dayChange],
      [190.55, 1905.5, -95.5, -4.77, -144.5],
    );
    const totals = state.totals();
    assert.deepEqual(
      [totals.cash, totals.buyingPower, totals.totalValue, totals.unrealized, totals.realized, totals.dayChange, totals.dayChangePercent],
      [8000, 6498.5, 9905.5, -95.5, -12.34, -144.5, -7.05],
    );
    assert.deepEqual(totals.referenceKinds, { SAP: "previous_close" });
  });

  test("a tick of an instrument not held changes nothing", () => {
    const state = new PortfolioState();
    state.applySnapshot(SNAPSHOT);
    assert.equal(state.applyTick("SIE", 100), false);
    assert.equal(state.applyTick("SAP", 0), false);
    assert.equal(state.rows()[0].price, 210);
  });

  test("a snapshot older than the last tick keeps the tick's price; a newer one gives its own", () => {
    const snap = (price, time) => ({ ...SNAPSHOT, positions: [{ ...SNAPSHOT.positions[0], last_price: price, last_price_at: time }] });
    const state = new PortfolioState();
    state.applySnapshot(SNAPSHOT);
    assert.equal(state.applyTick("SAP", 199.84, "2026-01-01T10:00:05.000Z"), true);
    // replayed after a reconnect, from before the tick: the tick's price stays
    state.applySnapshot(snap(200.15, "2026-01-01T10:00:04.000Z"));
    assert.equal(state.rows()[0].price, 199.84);
    // of that very tick: its price
    state.applySnapshot(snap(199.84, "2026-01-01T10:00:05.000Z"));
    assert.equal(state.rows()[0].price, 199.84);
    // built after a later tick this desk has not seen: the snapshot's price
    state.applySnapshot(snap(200.15, "2026-01-01T10:00:06.000Z"));
    assert.equal(state.rows()[0].price, 200.15);
    // and an older one replayed after that newer snapshot does not take it back
    state.applySnapshot(snap(150, "2026-01-01T10:00:01.000Z"));
    assert.equal(state.rows()[0].price, 200.15);
  });

  test("a snapshot without last_price_at (another service's) or with an unreadable one gives its price", () => {
    const state = new PortfolioState();
    state.applySnapshot(SNAPSHOT);
    state.applyTick("SAP", 199.84, "2026-01-01T10:00:05.000Z");
    state.applySnapshot(SNAPSHOT); // no last_price_at
    assert.equal(state.rows()[0].price, 210);
    state.applyTick("SAP", 199.84, "2026-01-01T10:00:05.000Z");
    state.applySnapshot({ ...SNAPSHOT, positions: [{ ...SNAPSHOT.positions[0], last_price_at: "yesterday" }] });
    assert.equal(state.rows()[0].price, 210);
  });

  test("a new snapshot keeps the latest tick when it carries no price, and drops sold positions", () => {
    const state = new PortfolioState();
    state.applySnapshot(SNAPSHOT);
    state.applyTick("SAP", 211);
    state.applySnapshot({ ...SNAPSHOT, positions: [{ ...SNAPSHOT.positions[0], last_price: null }] });
    assert.equal(state.rows()[0].price, 211);
    state.applySnapshot({ ...SNAPSHOT, positions: [] });
    assert.deepEqual(state.rows(), []);
    assert.equal(state.totals().totalValue, null); // no account yet: no cash to add
  });

  test("figures are exact where floating point is not (0.1 × 3)", () => {
    const state = new PortfolioState();
    state.applySnapshot({ ...SNAPSHOT, positions: [{ symbol: "X", quantity: 3, avg_cost: 0.1, last_price: 0.1 }] });
    const [row] = state.rows();
    assert.deepEqual([row.marketValue, row.unrealized], [0.3, 0]);
  });
});

describe("order ticket", () => {
  const base = { side: "buy", orderType: "limit", quantity: "10", price: "150", lastPrice: 200, cash: 8000, buyingPower: 6498.5, held: 0, feeRate: 0.001, minFee: 1 };

  test("the preview estimates cost, fees and cash after as the server books them", () => {
    assert.deepEqual(previewOrder(base), { price: 150, gross: 1500, fees: 1.5, total: 1501.5, cashAfter: 6498.5, exceeds: false });
    assert.deepEqual(previewOrder({ ...base, quantity: "1", price: "100" }).fees, 1); // the minimum fee
    const sale = previewOrder({ ...base, side: "sell", orderType: "market", quantity: "5", held: 10 });
    assert.deepEqual([sale.price, sale.total, sale.cashAfter, sale.exceeds], [200, 999, 8999, false]);
  });

  test("the preview flags a buy beyond the buying power and a sale beyond the holding", () => {
    assert.equal(previewOrder({ ...base, quantity: "100" }).exceeds, true);
    assert.equal(previewOrder({ ...base, side: "sell", quantity: "11", held: 10 }).exceeds, true);
  });

  test("a market order without a price estimates nothing", () => {
    const preview = previewOrder({ ...base, orderType: "market", lastPrice: null });
    assert.deepEqual([preview.total, preview.exceeds], [null, false]);
  });

  test("prices more than 10 % from the market are far", () => {
    assert.equal(distancePercent(180, 200), -10);
    assert.equal(isFarFromMarket(180, 200), false);
    assert.equal(isFarFromMarket(179.99, 200), true);
    assert.equal(isFarFromMarket(250, 200), true);
    assert.equal(isFarFromMarket(250, null), false);
  });

  test("confirmation: on by default, off by the setting or for the session, always with warnings", () => {
    const store = () => {
      const map = new Map();
      return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v) };
    };
    const settings = store();
    const session = store();
    const policy = new ConfirmPolicy(settings, session);
    assert.equal(policy.shouldConfirm(), true);
    policy.skipForSession();
    assert.equal(policy.shouldConfirm(), false);
    assert.equal(policy.shouldConfirm(true), true);
    assert.equal(new ConfirmPolicy(settings, store()).shouldConfirm(), true); // a new session asks again
    policy.enabled = false;
    assert.equal(new ConfirmPolicy(settings, store()).shouldConfirm(), false);
    policy.enabled = true;
    assert.equal(policy.shouldConfirm(), true);
  });

  test("keys: B/S outside fields, Enter confirms, Escape cancels, Enter in a ticket field sends nothing", () => {
    const key = (k, over = {}) =>
      keyAction({ key: k, modified: false, inField: false, inTicket: false, onButton: false, confirming: false, dialogOpen: false, ...over });
    assert.equal(key("b"), "start-buy");
    assert.equal(key("S"), "start-sell");
    assert.equal(key("b", { inField: true }), null);
    assert.equal(key("b", { modified: true }), null);
    assert.equal(key("Enter", { inField: true, inTicket: true }), "swallow-enter");
    assert.equal(key("Enter", { inField: true }), null);
    assert.equal(key("Enter", { confirming: true, dialogOpen: true }), "confirm");
    assert.equal(key("Enter", { confirming: true, onButton: true }), null);
    assert.equal(key("Escape", { dialogOpen: true }), "cancel");
    assert.equal(key("Escape"), null);
  });
});

const STRINGS = {
  error_unknown: "Abgelehnt ({code}).",
  error_insufficient_cash: "Nicht genug Geld: {quantity:num} {symbol} kosten {needed:eur}, verfügbar {available:eur}.",
  error_invalid_quantity: "Stückzahl > 0.",
  error_invalid_quantity_max: "Höchstens {max:num}.",
  error_validation_error: "Ungültig: {field}.",
  error_validation_error_digits: "{field}: höchstens {decimal_places} Nachkommastellen.",
  field_quantity: "Stückzahl",
  reason_cancelled_by_user: "vom Benutzer storniert",
  message_order_placed_open: "liegt im Markt",
  alert_price_above: "{symbol} bei {price:eur} über {threshold:eur}",
  alert_price_below: "{symbol} bei {price:eur} unter {threshold:eur}",
  alert_volume_spike: "{symbol}: {measured:num}-fach",
  rule_above: "{symbol}: über {threshold:eur}",
  rule_unknown: "{symbol}: {threshold:num}",
};

describe("i18n", () => {
  test("placeholders show figures in the locale", () => {
    assert.equal(normal(render("{a:eur} {b:num} {c:pct} {d} {e}", { a: "1000.5", b: 12.5, c: -0.001, d: "x" }, "de-DE")), "1.000,50 € 12,5 0,00 % x {e}");
  });

  test("a rejection is worded from its code and figures in each language", () => {
    const details = { order_id: "7", params: { symbol: "SAP", quantity: 100, needed: 20020, available: "10000.00" } };
    assert.equal(normal(errorText(STRINGS, "insufficient_cash", details, "de-DE")), "Nicht genug Geld: 100 SAP kosten 20.020,00 €, verfügbar 10.000,00 €.");
    const english = { error_insufficient_cash: "Not enough cash: {quantity:num} {symbol} cost {needed:eur}, {available:eur} available." };
    assert.equal(errorText(english, "insufficient_cash", details, "en-GB"), "Not enough cash: 100 SAP cost €20,020.00, €10,000.00 available.");
  });

  test("a field's fault picks the most specific text; an unknown code names the code", () => {
    assert.equal(errorText(STRINGS, "invalid_quantity", { field: "quantity", max: 1000000 }, "de-DE"), "Höchstens 1.000.000.");
    assert.equal(errorText(STRINGS, "invalid_quantity", { field: "quantity" }, "de-DE"), "Stückzahl > 0.");
    assert.equal(errorText(STRINGS, "validation_error", { field: "quantity", decimal_places: 4, integer_digits: 14 }, "de-DE"), "Stückzahl: höchstens 4 Nachkommastellen.");
    assert.equal(errorText(STRINGS, "validation_error", { field: "quantity" }, "de-DE"), "Ungültig: Stückzahl.");
    assert.equal(errorText(STRINGS, "something_new", {}, "de-DE"), "Abgelehnt (something_new).");
  });

  test("reasons, answers, alerts and rules are worded by code", () => {
    assert.equal(reasonText(STRINGS, "cancelled_by_user", {}, "de-DE"), "vom Benutzer storniert");
    assert.equal(reasonText(STRINGS, "", {}, "de-DE"), "");
    assert.equal(messageText(STRINGS, "order_placed_open", {}, "de-DE"), "liegt im Markt");
    assert.equal(messageText(STRINGS, undefined, {}, "de-DE"), null);
    const alert = { alert_type: "price_threshold", symbol: "SAP", trigger_value: 95, current_value: 95, threshold: 100 };
    assert.equal(normal(alertText(STRINGS, alert, "de-DE")), "SAP bei 95,00 € unter 100,00 €");
    assert.equal(normal(alertText(STRINGS, { ...alert, current_value: 100 }, "de-DE")), "SAP bei 100,00 € über 100,00 €");
    // a "below" rule reached exactly at its threshold reads as below when the page knows the rule
    assert.equal(normal(alertText(STRINGS, { ...alert, current_value: 100, condition: "below" }, "de-DE")), "SAP bei 100,00 € unter 100,00 €");
    assert.equal(alertText(STRINGS, { ...alert, alert_type: "volume_spike", trigger_value: 3.5 }, "en-GB"), "SAP: 3.5-fach");
    assert.equal(normal(alertRuleText(STRINGS, { symbol: "SAP", condition: "above", threshold: "250.5" }, "de-DE")), "SAP: über 250,50 €");
    assert.equal(alertRuleText(STRINGS, { symbol: "SAP", condition: "new_kind", threshold: 2 }, "de-DE"), "SAP: 2");
  });

  test("an analysis finding is worded from its code, a code among its figures by its own text, a date in the locale", () => {
    const german = {
      metric_pe_ratio: "KGV",
      analysis_reason_metric_negative_lower: "{metric:term} {value:num}: schlecht, ab {bad:num}.",
      analysis_reason_data_age: "Zahlen vom {as_of:date}.",
      analysis_reason_momentum_rising: "Momentum {momentum_percent:pct}: steigend.",
      analysis_reason_unknown: "Befund {code}",
    };
    const english = {
      metric_pe_ratio: "P/E",
      analysis_reason_metric_negative_lower: "{metric:term} {value:num}: poor, from {bad:num}.",
      analysis_reason_data_age: "Figures of {as_of:date}.",
    };
    const metric = { code: "metric_negative_lower", params: { metric: "pe_ratio", value: "30.5", bad: 25 }, vote: -1 };
    assert.equal(analysisReasonText(german, metric, "de-DE"), "KGV 30,5: schlecht, ab 25.");
    assert.equal(analysisReasonText(english, metric, "en-GB"), "P/E 30.5: poor, from 25.");
    // a bare date is that calendar day in every time zone
    assert.equal(analysisReasonText(german, { code: "data_age", params: { as_of: "2026-11-01" } }, "de-DE"), "Zahlen vom 01.11.2026.");
    assert.equal(analysisReasonText(english, { code: "data_age", params: { as_of: "2026-11-01" } }, "en-GB"), "Figures of 1 Nov 2026.");
    assert.equal(normal(analysisReasonText(german, { code: "momentum_rising", params: { momentum_percent: 1.234 } }, "de-DE")), "Momentum +1,23 %: steigend.");
    // a code without a text names itself; a term without a text shows the code
    assert.equal(analysisReasonText(german, { code: "new_finding", params: {} }, "de-DE"), "Befund new_finding");
    assert.equal(render("{metric:term}", { metric: "new_metric" }, "de-DE", german), "new_metric");
  });
});

describe("blotter", () => {
  const orders = [
    { id: 1, status: "open", quantity: "10", filled_quantity: "0", order_type: "limit", price: "150" },
    { id: 2, status: "partially_filled", quantity: "10", filled_quantity: "4", remaining_quantity: "6", order_type: "stop", stop_price: "90" },
    { id: 3, status: "filled", quantity: "1", filled_quantity: "1", order_type: "market" },
    { id: 4, status: "rejected", symbol: "SAP", reason_code: "insufficient_cash", reason_params: { quantity: "100", needed: "20020.00", available: "1.00" } },
  ];

  test("open orders, what remains, partial fills and resting prices", () => {
    assert.deepEqual(orders.map((o) => isOpen(o.status)), [true, true, false, false]);
    assert.deepEqual([remainingOf(orders[0]), remainingOf(orders[1])], [10, 6]);
    assert.deepEqual(orders.slice(0, 3).map(isPartlyFilled), [false, true, false]);
    assert.deepEqual(orders.slice(0, 3).map(restingPrice), [150, 90, null]);
    assert.deepEqual(cancelAllTargets(orders), ["1", "2"]);
  });

  test("list queries carry the page, the symbol and the statuses", () => {
    assert.equal(listQuery({ page: 0 }), "page=1");
    assert.equal(listQuery({ page: 2, symbol: "SAP", status: "rejected" }), "page=2&symbol=SAP&status=rejected");
    assert.equal(openOrdersQuery("SIE"), "page=1&symbol=SIE&status=open%2Cpartially_filled&page_size=200");
  });

  test("a rejected order's row shows its reason with its figures", () => {
    assert.equal(normal(orderReason(STRINGS, orders[3], "de-DE")), "Nicht genug Geld: 100 SAP kosten 20.020,00 €, verfügbar 1,00 €.");
    assert.equal(orderReason(STRINGS, orders[0], "de-DE"), "");
  });
});

describe("reconnect", () => {
  test("one reload after a reconnect however many subscriptions report lost events", () => {
    const policy = new ResyncPolicy();
    assert.equal(policy.needsReload("not_recovered"), true); // before any connection
    assert.equal(policy.established(), true);
    for (let i = 0; i < 10; i++) assert.equal(policy.needsReload(i % 2 ? "epoch_changed" : "not_recovered"), false);
    assert.equal(policy.needsReload("gap"), true);
    policy.lost();
    assert.equal(policy.needsReload("not_recovered"), true);
  });

  test("a coalescer runs once at a time and once more for any number of requests meanwhile", async () => {
    let runs = 0;
    let release;
    const coalescer = new Coalescer(() => {
      runs += 1;
      return new Promise((resolve) => (release = resolve));
    });
    for (let i = 0; i < 10; i++) coalescer.request();
    assert.equal(runs, 1);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 2);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 2);
    assert.equal(coalescer.busy, false);
  });

  test("countdown and probe spacing", () => {
    assert.equal(secondsLeft(10_500, 9_000), 2);
    assert.equal(secondsLeft(1_000, 9_000), 0);
    const gate = new ProbeGate(2000);
    assert.equal(gate.mayReconnect(0, true, true), true);
    assert.equal(gate.mayReconnect(1500, true, true), false);
    assert.equal(gate.mayReconnect(2500, false, true), false);
    assert.equal(gate.mayReconnect(2500, true, false), false);
    assert.equal(gate.mayReconnect(2500, true, true), true);
  });
});
