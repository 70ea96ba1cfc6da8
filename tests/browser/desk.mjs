// The desk in Debian's Chromium, driven by Playwright (playwright-core; no downloaded browser).
//
// Run by tests/test_desk_browser.py, which owns the server: this script asks it to stop and
// start daphne by writing {"action": ...} lines on stdout and waits for "ok" on stdin. The last
// stdout line is {"result": {...}}; the exit status is 0 only when every step passed.
//
// Environment: DESK_URL, DESK_USER, DESK_PASSWORD, DESK_SCREENSHOT, CHROMIUM (default
// /usr/bin/chromium), STEP_TIMEOUT_MS.
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

import { chromium } from "playwright-core";

const BASE = process.env.DESK_URL ?? "http://127.0.0.1:8000";
const USER = process.env.DESK_USER ?? "anna";
const PASSWORD = process.env.DESK_PASSWORD ?? "anna-pass-1234";
const SCREENSHOT = process.env.DESK_SCREENSHOT ?? "test-artifacts/desk.png";
const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS ?? 15000);
const ORDER_SYMBOL = process.env.DESK_ORDER_SYMBOL ?? "SAP";

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const steps = [];
const consoleErrors = [];
let phase = "normal";

const input = createInterface({ input: process.stdin });
const replies = [];
const waiting = [];
input.on("line", (line) => {
  const next = waiting.shift();
  if (next) next(line.trim());
  else replies.push(line.trim());
});

/** Ask the test to do something to the server and wait until it says it is done. */
async function ask(action) {
  process.stdout.write(JSON.stringify({ action }) + "\n");
  const answer = replies.length > 0 ? replies.shift() : await new Promise((resolve) => waiting.push(resolve));
  if (answer !== "ok") throw new Error(`server control ${action} failed: ${answer}`);
}

async function step(name, body) {
  const started = Date.now();
  try {
    const detail = await body();
    steps.push({ name, ok: true, ms: Date.now() - started, ...(detail ? { detail } : {}) });
  } catch (error) {
    steps.push({ name, ok: false, ms: Date.now() - started, error: String(error?.stack ?? error), page: await pageState() });
    throw error;
  }
}

let currentPage = null;

/** What the desk shows where the steps look, for the failure report. */
async function pageState() {
  if (!currentPage) return null;
  return currentPage
    .evaluate(() => {
      const text = (selector) => document.querySelector(selector)?.textContent?.trim() ?? null;
      return {
        url: location.href,
        status: text("#connection-status"),
        orderResult: text("#order-result"),
        orderError: text("#order-form-error"),
        fieldErrors: Array.from(document.querySelectorAll(".field-error")).map((node) => node.textContent).filter(Boolean),
        historyError: text("#order-history-error"),
        historyRows: Array.from(document.querySelectorAll("#order-history tbody tr")).slice(0, 3).map((row) => row.textContent),
        notifications: Array.from(document.querySelectorAll(".notification")).map((node) => node.textContent?.trim()),
        alertError: text("#alert-error"),
        analysisError: text("#analysis-error"),
        analysis: text("#analysis-result"),
      };
    })
    .catch((error) => ({ unavailable: String(error) }));
}

async function priceOf(page, symbol) {
  return page.locator(`[data-symbol="${symbol}"] .price`).first().textContent();
}

async function waitForPriceChange(page, symbol) {
  const before = await priceOf(page, symbol);
  await page.waitForFunction(
    ([sym, text]) => document.querySelector(`[data-symbol="${sym}"] .price`)?.textContent !== text,
    [symbol, before],
    { timeout: TIMEOUT },
  );
  return { before, after: await priceOf(page, symbol) };
}

async function placeOrder(page, { symbol, side, quantity, orderType }) {
  await page.selectOption("#order-symbol", symbol);
  await page.selectOption("#order-side", side);
  await page.selectOption("#order-type", orderType);
  await page.fill("#order-quantity", quantity);
  await page.click('#order-form button[type="submit"]');
  // The preview asks for confirmation before anything is sent.
  await page.waitForSelector("#order-preview:not([hidden])");
  await page.click("#order-confirm");
}

let browser;
let result = { ok: false };
try {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: "de-DE" });
  const page = await context.newPage();
  currentPage = page;
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push({ phase, text: message.text() });
  });
  page.on("pageerror", (error) => consoleErrors.push({ phase, text: `pageerror: ${error.message}` }));
  // Content-Security-Policy: every page comes with one, and nothing on it is refused by it.
  const cspViolations = [];
  const documentPolicies = [];
  await page.exposeFunction("reportCspViolation", (violation) => cspViolations.push({ phase, ...violation }));
  await page.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (event) =>
      window.reportCspViolation({ directive: event.violatedDirective, blocked: event.blockedURI, source: event.sourceFile }),
    ),
  );
  page.on("response", (response) => {
    if (response.request().resourceType() === "document") {
      documentPolicies.push({ url: response.url(), policy: response.headers()["content-security-policy"] ?? null });
    }
  });

  await step("anonymous visitors are sent to the login page", async () => {
    await page.goto(`${BASE}/`);
    if (!new URL(page.url()).pathname.startsWith("/login/")) throw new Error(`not redirected: ${page.url()}`);
  });

  await step("staff login opens the desk and it connects", async () => {
    await page.fill("#id_username", USER);
    await page.fill("#id_password", PASSWORD);
    await page.click('form[action="/login/"] button[type="submit"]');
    await page.waitForURL(`${BASE}/`);
    await page.waitForFunction(() => {
      const status = document.getElementById("connection-status");
      return status?.textContent === "Verbunden" && status.className === "status success";
    });
  });

  await step("the portfolio value is shown in euros", async () => {
    await page.waitForFunction(() => /€/.test(document.getElementById("portfolio-value")?.textContent ?? ""));
    return { value: await page.textContent("#portfolio-value") };
  });

  await step("prices change live and flash", async () => {
    const flashed = page.waitForSelector(".price.price-up, .price.price-down", { state: "attached" });
    const change = await waitForPriceChange(page, ORDER_SYMBOL);
    await flashed;
    return change;
  });

  await step("an operator's announcement shows on the desk as a notification", async () => {
    // A second socket of the page's own session sends it (the test gives the user `realtime.announce`).
    const answer = await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const socket = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws/`);
          socket.onerror = () => reject(new Error("announcing socket failed"));
          socket.onmessage = (frame) => {
            const message = JSON.parse(frame.data);
            if (message.event === "connection.established") {
              socket.send(JSON.stringify({ type: "user", event: "announce", data: { message: "Wartung um 18 Uhr", level: "warning" }, correlation_id: "announce-1" }));
            } else if (message.event === "announce.response") {
              socket.close();
              resolve(message.data.status);
            }
          };
        }),
    );
    if (answer !== "success") throw new Error(`announce answered ${answer}`);
    await page.locator(".notification.warning", { hasText: "Mitteilung des Betriebs" }).filter({ hasText: "Wartung um 18 Uhr" }).first().waitFor();
  });

  await step("a market order through the ticket gives a toast and a new history row", async () => {
    await page.waitForSelector("#order-history tbody tr[data-order-id]");
    const before = await page.$$eval("#order-history tbody tr[data-order-id]", (rows) => rows.map((row) => row.dataset.orderId));
    await placeOrder(page, { symbol: ORDER_SYMBOL, side: "buy", quantity: "3", orderType: "market" });
    await page.waitForFunction(() => (document.getElementById("order-result")?.textContent ?? "").length > 0);
    await page.waitForFunction(() => document.getElementById("order-result")?.dataset.state === "filled");
    const toast = page.locator(".notification", { hasText: "Order ausgeführt" }).first();
    await toast.waitFor();
    await page.waitForFunction(
      ([known, symbol]) => {
        const first = document.querySelector("#order-history tbody tr[data-order-id]");
        return first && !known.includes(first.dataset.orderId) && first.dataset.status === "filled" && first.textContent.includes(symbol);
      },
      [before, ORDER_SYMBOL],
    );
    return { toast: await toast.textContent(), result: await page.textContent("#order-result") };
  });

  await step("the order history pages forward and back", async () => {
    await page.waitForFunction(() => /1 von 2/.test(document.getElementById("history-page")?.textContent ?? ""));
    const firstPage = await page.getAttribute("#order-history tbody tr[data-order-id]", "data-order-id");
    await page.click("#history-next");
    await page.waitForFunction(() => /2 von 2/.test(document.getElementById("history-page")?.textContent ?? ""));
    const secondPage = await page.getAttribute("#order-history tbody tr[data-order-id]", "data-order-id");
    if (secondPage === firstPage) throw new Error("page 2 shows the same orders as page 1");
    if (!(await page.isDisabled("#history-next"))) throw new Error("'Weiter' enabled on the last page");
    await page.click("#history-prev");
    await page.waitForFunction(() => /1 von 2/.test(document.getElementById("history-page")?.textContent ?? ""));
    return { firstPage, secondPage };
  });

  await step("an invalid order shows the server's error next to the quantity", async () => {
    await placeOrder(page, { symbol: ORDER_SYMBOL, side: "buy", quantity: "0", orderType: "market" });
    await page.waitForFunction(() => (document.getElementById("quantity-error")?.textContent ?? "").length > 0);
    const invalid = await page.getAttribute("#order-quantity", "aria-invalid");
    if (invalid !== "true") throw new Error("the quantity field is not marked invalid");
    return { error: await page.textContent("#quantity-error") };
  });

  await step("a limit order shows the price field and rests open with cancel", async () => {
    await page.selectOption("#order-type", "limit");
    if (await page.isHidden("#price-field")) throw new Error("price field hidden for a limit order");
    await page.fill("#order-price", "1");
    await placeOrder(page, { symbol: ORDER_SYMBOL, side: "buy", quantity: "1", orderType: "limit" });
    const row = page.locator('#order-history tbody tr[data-status="open"], #order-history tbody tr[data-status="pending"]').first();
    await row.waitFor();
    await row.locator("button.cancel-order").click();
    await page.locator(".notification", { hasText: "Order storniert" }).first().waitFor();
    await page.selectOption("#order-type", "market");
    if (!(await page.isHidden("#price-field"))) throw new Error("price field shown for a market order");
  });

  await step("a desk screenshot is kept", async () => {
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    return { path: SCREENSHOT };
  });

  await step("when the server stops the status says the connection is lost", async () => {
    phase = "restart";
    await ask("stop-server");
    await page.waitForFunction(() => {
      const status = document.getElementById("connection-status");
      return status?.textContent === "Verbindung getrennt" && status.className === "status warning";
    });
  });

  await step("while disconnected the order controls are off with the reason and an order is refused at once", async () => {
    if (!(await page.isDisabled('#order-form button[type="submit"]'))) throw new Error("the order button is enabled while disconnected");
    const reason = await page.textContent("#ticket-connection");
    if (!(await page.isVisible("#ticket-connection")) || !/Keine Verbindung/.test(reason ?? "")) {
      throw new Error(`no visible reason: ${reason}`);
    }
    await page.fill("#order-quantity", "2");
    // Submitting the form itself (as Enter in a field would, were the button not off).
    const outcome = await page.evaluate(async () => {
      const started = performance.now();
      document.getElementById("order-form").requestSubmit();
      await new Promise((resolve) => setTimeout(resolve, 0));
      return {
        ms: performance.now() - started,
        error: document.getElementById("order-form-error")?.textContent,
        state: document.getElementById("order-result")?.dataset.state,
      };
    });
    if (outcome.error !== "Nicht gesendet: keine Verbindung.") throw new Error(`not refused at once: ${JSON.stringify(outcome)}`);
    if (outcome.state === "sent") throw new Error("the ticket says sent");
    await page.fill("#order-quantity", "");
    return { ...outcome, reason };
  });

  await step("when it is back the desk reconnects with its subscriptions", async () => {
    const before = await page.evaluate(() => ({
      clientId: window.portfolioWS.client.getClientId(),
      subscriptions: window.portfolioWS.client.getSubscriptions().sort(),
    }));
    await ask("start-server");
    await page.waitForFunction(
      () => document.getElementById("connection-status")?.textContent === "Verbunden",
      null,
      { timeout: TIMEOUT * 2 },
    );
    phase = "normal";
    if (await page.isDisabled('#order-form button[type="submit"]')) throw new Error("the order button is still off after the reconnect");
    if (await page.isVisible("#ticket-connection")) throw new Error("the no-connection reason is still shown");
    const after = await page.evaluate(() => ({
      clientId: window.portfolioWS.client.getClientId(),
      subscriptions: window.portfolioWS.client.getSubscriptions().sort(),
    }));
    if (after.clientId !== before.clientId) throw new Error(`new client id ${after.clientId} != ${before.clientId}`);
    if (JSON.stringify(after.subscriptions) !== JSON.stringify(before.subscriptions))
      throw new Error(`subscriptions differ: ${before.subscriptions} -> ${after.subscriptions}`);
    // Events of the restored subscriptions arrive again: prices move, and a fill is announced.
    const change = await waitForPriceChange(page, ORDER_SYMBOL);
    await page.evaluate(() => document.querySelectorAll(".notification").forEach((node) => node.remove()));
    await placeOrder(page, { symbol: ORDER_SYMBOL, side: "buy", quantity: "1", orderType: "market" });
    await page.locator(".notification", { hasText: "Order ausgeführt" }).first().waitFor();
    return { ...after, change };
  });

  await step("an alert rule is created, fires on the next tick, and is removed", async () => {
    await page.selectOption("#alert-symbol", ORDER_SYMBOL);
    await page.selectOption("#alert-condition", "above");
    await page.fill("#alert-threshold", "1");
    await page.click('#alert-form button[type="submit"]');
    // A threshold far from the market is shown first; submitting it again creates the rule.
    await page.waitForFunction(() => /weit vom letzten Kurs/.test(document.getElementById("alert-warning")?.textContent ?? ""));
    await page.click('#alert-form button[type="submit"]');
    const rule = page.locator("#alert-rules li[data-alert-id]", { hasText: ORDER_SYMBOL }).first();
    await rule.waitFor();
    await page.locator(".notification", { hasText: `Kursalarm: ${ORDER_SYMBOL}` }).first().waitFor();
    await page.locator("#alerts-incoming li", { hasText: ORDER_SYMBOL }).first().waitFor();
    await rule.locator("button.remove-alert").click();
    await page.waitForFunction(() => document.querySelectorAll("#alert-rules li[data-alert-id]").length === 0);
  });

  await step("an analysis shows its recommendation with indicators", async () => {
    await page.selectOption("#analysis-symbol", ORDER_SYMBOL);
    await page.click('#analysis-form button[type="submit"]');
    const result = page.locator("#analysis-result .recommendation");
    await result.waitFor({ timeout: TIMEOUT * 2 });
    const indicators = await page.locator("#analysis-result table.indicators tr").count();
    if (indicators < 3) throw new Error(`only ${indicators} indicator rows`);
    return { recommendation: await result.textContent(), indicators };
  });

  await step("the desk switches to English", async () => {
    await page.selectOption("#language-select", "en");
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('form.language button[type="submit"]')]);
    await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Connected");
    const heading = await page.textContent("#ticket-heading");
    await page.selectOption("#language-select", "de");
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('form.language button[type="submit"]')]);
    await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Verbunden");
    return { heading };
  });

  await step("logout closes the socket and shows the login page", async () => {
    await page.evaluate(() => {
      window.__closedByLogout = false;
      window.portfolioWS.client.on("connection.closed", (event) => {
        sessionStorage.setItem("closed", JSON.stringify(event));
      });
    });
    // The desk's requests of the page load answered first: one still in flight when the session
    // ends is answered 403, which the browser reports on the console (not what this step checks).
    await page.waitForLoadState("networkidle");
    await Promise.all([page.waitForURL(/\/login\//), page.click('#logout-form button[type="submit"]')]);
    const closed = JSON.parse((await page.evaluate(() => sessionStorage.getItem("closed"))) ?? "null");
    if (!closed || closed.will_reconnect !== false) throw new Error(`socket not closed by logout: ${JSON.stringify(closed)}`);
    await page.goto(`${BASE}/`);
    if (!new URL(page.url()).pathname.startsWith("/login/")) throw new Error("the desk is still open after logout");
  });

  await step("every page runs under the Content-Security-Policy without violations", async () => {
    const without = documentPolicies.filter((entry) => !entry.policy?.includes("script-src 'self'"));
    if (documentPolicies.length === 0 || without.length > 0) throw new Error(`pages without the policy: ${JSON.stringify(without)}`);
    if (cspViolations.length > 0) throw new Error(`CSP violations: ${JSON.stringify(cspViolations)}`);
    return { pages: documentPolicies.length };
  });

  await step("no JavaScript errors on the console", async () => {
    // While the server is down the browser itself reports the failed reconnect attempts.
    const unexpected = consoleErrors.filter(
      (entry) => !(entry.phase === "restart" && /WebSocket connection to|Failed to load resource|ERR_CONNECTION_REFUSED/.test(entry.text)),
    );
    if (unexpected.length > 0) throw new Error(`console errors: ${JSON.stringify(unexpected)}`);
    return { tolerated: consoleErrors.length };
  });
  result = { ok: true };
} catch (error) {
  result = { ok: false, error: String(error?.message ?? error) };
} finally {
  await browser?.close().catch(() => undefined);
  input.close();
}
process.stdout.write(JSON.stringify({ result: { ...result, steps, consoleErrors } }) + "\n");
process.exit(result.ok ? 0 : 1);
