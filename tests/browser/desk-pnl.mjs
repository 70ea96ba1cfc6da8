// A held position's price, value and P&L move with every tick of its instrument, and a stray
// Enter in the ticket sends nothing. Run by tests/test_desk_trading_browser.py.
import { runScenario, textOf } from "./scenario.mjs";

await runScenario(async (page, step) => {
  await step("the position row shows the portfolio's SAP holding", async () => {
    await page.waitForSelector('#positions tr[data-position="SAP"]');
    // The account beside it: cash, buying power, realised P&L (no sale yet) and the day's change
    // named by its reference price.
    const account = {
      cash: await textOf(page, "#portfolio-cash"),
      buyingPower: await textOf(page, "#portfolio-buying-power"),
      realized: await textOf(page, "#portfolio-realized"),
      day: await textOf(page, "#portfolio-day-change"),
      basis: await textOf(page, "#portfolio-day-basis"),
    };
    if (account.cash !== "100.000,00 €" || account.buyingPower !== "100.000,00 €") throw new Error(`account ${JSON.stringify(account)}`);
    if (account.realized !== "0,00 €") throw new Error(`realised ${account.realized}`);
    if (!/€/.test(account.day) || !/^gegenüber|^noch kein Kurs/.test(account.basis)) throw new Error(`day ${JSON.stringify(account)}`);
    return { row: await textOf(page, '#positions tr[data-position="SAP"]'), account };
  });

  await step("a tick moves the row's price, value and P&L, and the totals, to the board's price", async () => {
    const row = '#positions tr[data-position="SAP"]';
    // Price and P&L are read in one go: a tick landing between two reads would pair the old price
    // with the new P&L, and the step would then see a price move without a P&L move.
    const before = await page.$eval(row, (tr) => {
      const text = (s) => (tr.querySelector(s)?.textContent ?? "").replace(/[\u00a0\u202f]/g, " ").trim();
      return { price: text(".price"), pnl: text(".pnl") };
    });
    // The row's symbol button is marked and focused: a tick must rewrite the figures, not the row.
    await page.evaluate((selector) => {
      const button = document.querySelector(`${selector} button.select-symbol`);
      button.dataset.marked = "yes";
      button.focus();
    }, row);
    // The row moves on a tick and on a newer portfolio snapshot. A snapshot read from the
    // database (the desk's refresh_portfolio at connect) can reach the page a moment before the
    // tick's own event, which comes from the feed through Redis: the figures are read once the
    // row has moved and agrees with the board, in one go.
    const handle = await page.waitForFunction(
      ([selector, price]) => {
        const text = (s) => (document.querySelector(s)?.textContent ?? "").replace(/[\u00a0\u202f]/g, " ").trim();
        const now = {
          price: text(`${selector} .price`),
          board: text('#price-board tr[data-symbol="SAP"] .price'),
          value: text(`${selector} .market-value`),
          pnl: text(`${selector} .pnl`),
          pnlPercent: text(`${selector} .pnl-percent`),
          total: text("#portfolio-value"),
          unrealized: text("#portfolio-change"),
        };
        return now.price !== price && now.price === now.board ? now : false; // `price` is textOf's, normalised alike
      },
      [row, before.price],
    );
    const after = await handle.jsonValue();
    // 10 SAP at an average cost of 100,00 €: P&L = 10 × (price − 100).
    const price = Number(after.price.replace(/[^\d,-]/g, "").replace(",", "."));
    const expected = new Intl.NumberFormat("de-DE", { style: "currency", currency: "EUR" })
      .format(10 * (price - 100))
      .replace(/[\u00a0\u202f]/g, " ");
    if (!after.pnl.endsWith(expected)) throw new Error(`P&L ${after.pnl}, expected ${expected} at ${after.price}`);
    if (after.pnl === before.pnl) throw new Error(`P&L did not move: ${before.pnl}`);
    if (!after.unrealized.includes(expected)) throw new Error(`unrealised total ${after.unrealized} != ${expected}`);
    const kept = await page.evaluate((selector) => {
      const button = document.querySelector(`${selector} button.select-symbol`);
      return { marked: button?.dataset.marked === "yes", focused: document.activeElement === button };
    }, row);
    if (!kept.marked || !kept.focused) throw new Error(`the tick redrew the row: ${JSON.stringify(kept)}`);
    return { before, after };
  });

  await step("Enter in a ticket field sends no order; B starts a buy", async () => {
    const before = await page.$$eval("#order-history tbody tr[data-order-id]", (rows) => rows.length);
    await page.focus("#price-board");
    await page.keyboard.press("b");
    const focused = await page.evaluate(() => [document.activeElement?.id, document.getElementById("order-side").value]);
    if (focused[0] !== "order-quantity" || focused[1] !== "buy") throw new Error(`B did not start a buy: ${focused}`);
    await page.keyboard.type("1");
    await page.keyboard.press("Enter");
    // A marker that must come after anything the Enter could have caused: a full history reload.
    await page.evaluate(() => window.portfolioWS.client.sendUserCommand("list_alerts", {}));
    const state = await page.evaluate(() => ({
      preview: !document.getElementById("order-preview").hidden,
      result: document.getElementById("order-result").dataset.state ?? "",
    }));
    if (state.preview || state.result) throw new Error(`Enter in the field did something: ${JSON.stringify(state)}`);
    const after = await page.$$eval("#order-history tbody tr[data-order-id]", (rows) => rows.length);
    if (after !== before) throw new Error("an order was placed");
    await page.fill("#order-quantity", "");
  });
});
