// A rejection is worded in the page's language with its figures: German, then English.
// Run by tests/test_desk_trading_browser.py.
import { BASE, fillTicket, runScenario, textOf } from "./scenario.mjs";

async function rejectedBuy(page) {
  await page.evaluate(() => (document.getElementById("order-form-error").textContent = ""));
  await fillTicket(page, { symbol: "SAP", side: "buy", quantity: "100000", orderType: "market" });
  await page.waitForSelector("#order-preview:not([hidden])");
  const warning = await textOf(page, "#order-preview-warnings");
  await page.click("#order-confirm");
  await page.waitForFunction(() => (document.getElementById("order-form-error")?.textContent ?? "").length > 0);
  return { warning, error: await textOf(page, "#order-form-error") };
}

await runScenario(async (page, step) => {
  await step("German: the rejection names the missing cash in German, in the ticket and the history", async () => {
    const { warning, error } = await rejectedBuy(page);
    if (!/übersteigen die Kaufkraft/.test(warning)) throw new Error(`warning ${warning}`);
    if (!/^Nicht genug Geld: 100\.000 SAP kosten etwa [\d.]+,\d\d € mit Gebühren, verfügbar sind 100\.000,00 €\.$/.test(error))
      throw new Error(`error ${error}`);
    const reason = page.locator('#order-history tr[data-status="rejected"] td.reason').first();
    await reason.waitFor();
    if ((await reason.textContent()).replace(/[\u00a0\u202f]/g, " ") !== error) throw new Error("the history row words it differently");
    return { error };
  });

  await step("English: the same rejection in English with English numbers", async () => {
    await page.selectOption("#language-select", "en");
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('form.language button[type="submit"]')]);
    await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Connected");
    const { warning, error } = await rejectedBuy(page);
    if (!/exceeds the buying power/.test(warning)) throw new Error(`warning ${warning}`);
    if (!/^Not enough cash: 100,000 SAP cost about €[\d,]+\.\d\d including fees; €100,000\.00 are available\.$/.test(error))
      throw new Error(`error ${error}`);
    const reason = await textOf(page, '#order-history tr[data-status="rejected"] td.reason');
    if (!reason.startsWith("Not enough cash")) throw new Error(`history reason ${reason}`);
    return { error };
  });
});
