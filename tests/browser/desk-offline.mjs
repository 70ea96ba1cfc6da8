// While the server is down: stale figures greyed, actions off with the reason, a countdown and
// "connect now", an order refused at once; when the server answers again the desk is back
// within about 2 s, and reloads the portfolio once. Run by tests/test_desk_trading_browser.py.
import { TIMEOUT, ask, runScenario, textOf } from "./scenario.mjs";

await runScenario(
  async (page, step) => {
    await page.evaluate(() => {
      const client = window.portfolioWS.client;
      window.__refreshes = 0;
      window.__retry = null;
      const send = client.sendUserCommand.bind(client);
      client.sendUserCommand = (command, ...rest) => {
        if (command === "refresh_portfolio") window.__refreshes += 1;
        return send(command, ...rest);
      };
      client.on("connection.reconnecting", ({ delay }) => (window.__retry = { at: Date.now() + delay, delay }));
    });

    await step("when the server stops: greyed figures, actions off with the reason, a countdown", async () => {
      await ask("stop-server");
      await page.waitForFunction(() => document.getElementById("desk")?.dataset.connection === "stale");
      await page.waitForSelector("#reconnect-info:not([hidden])");
      await page.waitForFunction(() => /Neuer Versuch in \d+ s|Verbinde/.test(document.getElementById("reconnect-countdown")?.textContent ?? ""));
      const opacity = await page.$eval("#portfolio-value", (node) => Number(getComputedStyle(node).opacity));
      if (!(opacity < 1)) throw new Error(`the stale value is not greyed (opacity ${opacity})`);
      for (const selector of ['#order-form button[type="submit"]', '#alert-form button[type="submit"]', '#analysis-form button[type="submit"]']) {
        if (!(await page.isDisabled(selector))) throw new Error(`${selector} enabled while disconnected`);
        if (!/Keine Verbindung/.test((await page.getAttribute(selector, "title")) ?? "")) throw new Error(`${selector} gives no reason`);
      }
      if (!(await page.isVisible("#stale-note"))) throw new Error("no note that the figures are stale");
      return { countdown: await textOf(page, "#reconnect-countdown") };
    });

    await step("an order while disconnected is refused at once", async () => {
      await page.fill("#order-quantity", "2");
      const outcome = await page.evaluate(async () => {
        document.getElementById("order-form").requestSubmit();
        await new Promise((resolve) => setTimeout(resolve, 0));
        return {
          error: document.getElementById("order-form-error")?.textContent,
          preview: !document.getElementById("order-preview").hidden,
          state: document.getElementById("order-result")?.dataset.state ?? "",
        };
      });
      if (outcome.error !== "Nicht gesendet: keine Verbindung." || outcome.preview || outcome.state === "sent")
        throw new Error(`not refused at once: ${JSON.stringify(outcome)}`);
      await page.fill("#order-quantity", "");
      return outcome;
    });

    let timing;
    await step("when the server answers again the desk is back within about 2 s, before its backoff would retry", async () => {
      // Wait for a retry scheduled far enough out that the backoff alone would come late.
      await page.waitForFunction(() => (window.__retry?.at ?? 0) - Date.now() > 6000, null, { timeout: 60000, polling: 100 });
      await ask("start-server");
      const up = Date.now();
      await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Verbunden", null, {
        timeout: TIMEOUT,
      });
      const back = Date.now();
      const retryAt = await page.evaluate(() => window.__retry.at);
      timing = { afterServerUpMs: back - up, beforeScheduledRetryMs: retryAt - back };
      if (timing.afterServerUpMs > 3000) throw new Error(`back only after ${timing.afterServerUpMs} ms`);
      if (timing.beforeScheduledRetryMs <= 0) throw new Error(`it waited for the backoff: ${JSON.stringify(timing)}`);
      if (await page.isVisible("#reconnect-info")) throw new Error("the countdown is still shown");
      if (await page.isDisabled('#order-form button[type="submit"]')) throw new Error("the order button is still off");
      return timing;
    });

    await step("after the reconnect the portfolio is refreshed once, not once per subscription", async () => {
      await page.waitForFunction(() => window.__refreshes >= 1);
      // Markers: two round trips and a price tick after the reconnect's reloads.
      for (let i = 0; i < 2; i++) await page.evaluate(() => window.portfolioWS.client.sendUserCommand("list_alerts", {}));
      const price = await textOf(page, '#price-board tr[data-symbol="SAP"] .price');
      await page.waitForFunction(
        (before) => (document.querySelector('#price-board tr[data-symbol="SAP"] .price')?.textContent ?? "").replace(/\s/g, " ") !== before,
        price,
      );
      const refreshes = await page.evaluate(() => window.__refreshes);
      if (refreshes !== 1) throw new Error(`${refreshes} portfolio refreshes after one reconnect`);
      if (await page.evaluate(() => document.getElementById("desk").dataset.connection) !== "connected")
        throw new Error("the figures are still greyed");
      return { refreshes };
    });
  },
  { tolerate: /WebSocket connection to|Failed to load resource|ERR_CONNECTION_REFUSED/ },
);
