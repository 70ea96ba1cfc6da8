// The order ticket's preview and the blotter: an order far from the market is previewed with a
// warning and sent on confirmation, rests in the open orders, is cancelled there and shows its
// reason in the history; a fill is listed with its fees; "cancel all" empties the open orders.
// Run by tests/test_desk_trading_browser.py.
import { fillTicket, runScenario, textOf } from "./scenario.mjs";

await runScenario(async (page, step) => {
  page.on("dialog", (dialog) => dialog.accept());

  await step("a limit buy far below the market is previewed with cost, fees and a warning", async () => {
    await fillTicket(page, { symbol: "SAP", side: "buy", quantity: "2", orderType: "limit", price: "1" });
    await page.waitForSelector("#order-preview:not([hidden])");
    const preview = {
      total: await textOf(page, "#preview-total"),
      fees: await textOf(page, "#preview-fees"),
      cashAfter: await textOf(page, "#preview-cash-after"),
      warnings: await textOf(page, "#order-preview-warnings"),
    };
    // 2 × 1,00 € plus the minimum fee of 1,00 €, from 100.000,00 € cash.
    if (preview.total !== "3,00 €" || preview.fees !== "1,00 €" || preview.cashAfter !== "99.997,00 €")
      throw new Error(`preview ${JSON.stringify(preview)}`);
    if (!/weit vom Markt/.test(preview.warnings)) throw new Error(`no far-from-market warning: ${preview.warnings}`);
    const focused = await page.evaluate(() => document.activeElement?.id);
    if (focused !== "order-confirm") throw new Error(`focus on ${focused}, not the confirm button`);
    return preview;
  });

  let orderId;
  await step("Enter confirms: the order is sent, confirmed and rests in the open orders", async () => {
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.getElementById("order-result")?.dataset.state === "confirmed");
    orderId = await page.getAttribute("#order-result", "data-order-id");
    const row = `#open-orders tr[data-order-id="${orderId}"]`;
    await page.waitForSelector(row);
    // The resting buy reserves 2 × 1,00 € plus the 1,00 € fee of the buying power, not of the cash.
    await page.waitForFunction(() => document.getElementById("portfolio-buying-power")?.textContent.replace(/\s/g, " ") === "99.997,00 €");
    const cash = await textOf(page, "#portfolio-cash");
    if (cash !== "100.000,00 €") throw new Error(`cash ${cash}`);
    return { row: await textOf(page, row), result: await textOf(page, "#order-result"), cash };
  });

  await step("the open order is modified from the blotter: quantity and price in German notation", async () => {
    const row = `#open-orders tr[data-order-id="${orderId}"]`;
    await page.click(`${row} button.modify-order`);
    await page.waitForSelector("#modify-form:not([hidden])");
    const shown = { quantity: await page.inputValue("#modify-quantity"), price: await page.inputValue("#modify-price") };
    if (shown.quantity !== "2" || shown.price !== "1") throw new Error(`dialog ${JSON.stringify(shown)}`);
    await page.fill("#modify-quantity", "4");
    await page.fill("#modify-price", "1,5");
    await page.click('#modify-form button[type="submit"]');
    await page.waitForSelector("#modify-form", { state: "hidden" });
    await page.waitForFunction((selector) => document.querySelector(`${selector} td.remaining`)?.textContent === "4", row);
    // 4 × 1,50 € plus the 1,00 € minimum fee reserved now
    await page.waitForFunction(() => document.getElementById("portfolio-buying-power")?.textContent.replace(/\s/g, " ") === "99.993,00 €");
    return { row: await textOf(page, row) };
  });

  await step("the open order is cancelled from the blotter and the history gives the reason", async () => {
    await page.click(`#open-orders tr[data-order-id="${orderId}"] button.cancel-order`);
    await page.locator(".notification", { hasText: "vom Benutzer storniert" }).first().waitFor();
    await page.waitForSelector(`#open-orders tr[data-order-id="${orderId}"]`, { state: "detached" });
    const row = `#order-history tr[data-order-id="${orderId}"][data-status="cancelled"]`;
    await page.waitForSelector(row);
    const reason = await textOf(page, `${row} td.reason`);
    if (reason !== "vom Benutzer storniert") throw new Error(`reason ${reason}`);
    await page.waitForFunction(() => document.getElementById("portfolio-buying-power")?.textContent.replace(/\s/g, " ") === "100.000,00 €");
    return { reason };
  });

  await step("a market buy is listed among the executions with its price and fees", async () => {
    await page.check("#confirm-setting").catch(() => undefined);
    await fillTicket(page, { symbol: "SAP", side: "buy", quantity: "3", orderType: "market" });
    await page.click("#order-confirm");
    await page.waitForFunction(() => document.getElementById("order-result")?.dataset.state === "filled");
    const id = await page.getAttribute("#order-result", "data-order-id");
    const row = `#executions tr[data-order-id="${id}"]`;
    await page.waitForSelector(row);
    const fees = await textOf(page, `${row} td.fees`);
    if (!/€$/.test(fees)) throw new Error(`fees ${fees}`);
    return { row: await textOf(page, row) };
  });

  await step("the history filters by symbol and status", async () => {
    await page.selectOption("#blotter-status", "cancelled");
    await page.waitForFunction(() => {
      const rows = Array.from(document.querySelectorAll("#order-history tbody tr[data-order-id]"));
      return rows.length > 0 && rows.every((row) => row.dataset.status === "cancelled");
    });
    await page.selectOption("#blotter-status", "");
  });

  await step("'cancel all' cancels every open order", async () => {
    for (const price of ["2", "3"]) {
      await fillTicket(page, { symbol: "SAP", side: "buy", quantity: "1", orderType: "limit", price });
      await page.click("#order-confirm");
      await page.waitForFunction(() => document.getElementById("order-result")?.dataset.state === "confirmed");
    }
    await page.waitForFunction(() => document.querySelectorAll("#open-orders tbody tr[data-order-id]").length === 2);
    await page.waitForFunction(() => !document.getElementById("cancel-all").disabled);
    await page.click("#cancel-all");
    await page.waitForFunction(() => document.querySelectorAll("#open-orders tbody tr[data-order-id]").length === 0);
    if (!(await page.isDisabled("#cancel-all"))) throw new Error("'cancel all' stays enabled with nothing open");
  });
});
