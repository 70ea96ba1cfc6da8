// The board's watchlist: kept in storage, and the symbols the price subscription is narrowed to.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Watchlist } from "../../static/js/watchlist.js";

function memoryStorage(initial = {}) {
  const values = new Map(Object.entries(initial));
  return { getItem: (key) => values.get(key) ?? null, setItem: (key, value) => values.set(key, value), values };
}

test("marked symbols and the only-watched switch survive a reload through storage", () => {
  const storage = memoryStorage();
  const first = new Watchlist(storage);
  assert.equal(first.toggle("SAP"), true);
  first.toggle("ALV");
  first.toggle("ALV");
  first.only = true;

  const second = new Watchlist(storage);

  assert.equal(second.has("SAP"), true);
  assert.equal(second.has("ALV"), false);
  assert.equal(second.only, true);
});

test("the subscription is narrowed only when the switch is on and the list is not empty", () => {
  const list = new Watchlist(memoryStorage());
  assert.equal(list.subscriptionSymbols("SAP"), null);
  list.only = true;
  assert.equal(list.subscriptionSymbols("SAP"), null, "an empty list hides nothing");
  list.toggle("SIE");
  list.toggle("BAS");

  assert.deepEqual(list.subscriptionSymbols("SAP"), ["BAS", "SAP", "SIE"], "the chart's symbol keeps its ticks");
  assert.deepEqual(list.subscriptionSymbols(null), ["BAS", "SIE"]);
  assert.deepEqual(
    list.subscriptionSymbols(null, ["ALV", "SIE"]),
    ["ALV", "BAS", "SIE"],
    "held positions keep their ticks (they are revalued on every one)",
  );
  list.only = false;
  assert.equal(list.subscriptionSymbols("SAP"), null);
});

test("unreadable storage gives an empty list instead of an error", () => {
  for (const raw of ["{not json", '{"symbols": "SAP", "only": "yes"}', '{"symbols": [1, "SAP"]}']) {
    const list = new Watchlist(memoryStorage({ "desk.watchlist": raw }));
    assert.equal(list.only, false);
    assert.equal(list.has("1"), false);
  }
  const refusing = { getItem: () => null, setItem: () => { throw new Error("quota"); } };
  assert.equal(new Watchlist(refusing).toggle("SAP"), true);
});
