// What the desk's browser scenarios share: Debian's Chromium through playwright-core, the login,
// named steps, server control by the Python test (an {"action": ...} line on stdout answered by
// "ok" on stdin), and the result as the last stdout line, {"result": {...}}.
//
// Environment: DESK_URL, DESK_USER, DESK_PASSWORD, CHROMIUM (default /usr/bin/chromium).
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

export const BASE = process.env.DESK_URL ?? "http://127.0.0.1:8000";
export const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS ?? 15000);

const input = createInterface({ input: process.stdin });
const replies = [];
const waiting = [];
input.on("line", (line) => {
  const next = waiting.shift();
  if (next) next(line.trim());
  else replies.push(line.trim());
});

/** Ask the test to do something to the server and wait until it says it is done. */
export async function ask(action) {
  process.stdout.write(JSON.stringify({ action }) + "\n");
  const answer = replies.length > 0 ? replies.shift() : await new Promise((resolve) => waiting.push(resolve));
  if (answer !== "ok") throw new Error(`server control ${action} failed: ${answer}`);
}

/**
 * Run `body(page, step)` in a fresh browser on the desk, logged in; report each step, console
 * errors (`tolerate` matches those expected, e.g. while the server is down) and exit.
 */
export async function runScenario(body, { locale = "de-DE", tolerate = null } = {}) {
  const steps = [];
  const consoleErrors = [];
  let browser;
  let result = { ok: false };
  let page;
  const step = async (name, action) => {
    try {
      const detail = await action();
      steps.push({ name, ok: true, ...(detail ? { detail } : {}) });
    } catch (error) {
      const shown = page
        ? await page
            .evaluate(() => ({
              status: document.getElementById("connection-status")?.textContent,
              orderError: document.getElementById("order-form-error")?.textContent,
              positions: document.querySelector("#positions tbody")?.textContent,
              notifications: Array.from(document.querySelectorAll(".notification")).map((n) => n.textContent),
              // what the blotter's steps act on: the rows, their buttons and the dialogs
              openOrders: Array.from(document.querySelectorAll("#open-orders tbody tr")).map((row) => ({
                id: row.getAttribute("data-order-id"),
                status: row.getAttribute("data-status"),
                buttons: Array.from(row.querySelectorAll("button")).map((b) => `${b.className}${b.disabled ? " (disabled)" : ""}`),
              })),
              modifyFormHidden: document.getElementById("modify-form")?.hidden,
              previewHidden: document.getElementById("order-preview")?.hidden,
              focused: document.activeElement?.id || document.activeElement?.tagName,
            }))
            .catch(() => null)
        : null;
      steps.push({ name, ok: false, error: String(error?.stack ?? error), page: shown });
      throw error;
    }
  };
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    });
    page = await (await browser.newContext({ viewport: { width: 1366, height: 1200 }, locale })).newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("console", (message) => {
      if (message.type() === "error" && !(tolerate && tolerate.test(message.text()))) consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
    await step("login opens the desk and it connects", async () => {
      await page.goto(`${BASE}/`);
      await page.fill("#id_username", process.env.DESK_USER);
      await page.fill("#id_password", process.env.DESK_PASSWORD);
      await page.click('form[action="/login/"] button[type="submit"]');
      await page.waitForFunction(() => document.getElementById("connection-status")?.className === "status success");
    });
    await body(page, step);
    await step("no JavaScript errors on the console", async () => {
      if (consoleErrors.length > 0) throw new Error(`console errors: ${JSON.stringify(consoleErrors)}`);
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
}

/** Fill the ticket and press its send button (the preview, when shown, is left open). */
export async function fillTicket(page, { symbol, side, quantity, orderType, price }) {
  await page.selectOption("#order-symbol", symbol);
  await page.selectOption("#order-side", side);
  await page.selectOption("#order-type", orderType);
  await page.fill("#order-quantity", quantity);
  if (price !== undefined) await page.fill("#order-price", price);
  await page.click('#order-form button[type="submit"]');
}

/** The text of an element, spaces normalised (Intl's narrow and non-breaking spaces become plain). */
export async function textOf(page, selector) {
  const text = await page.textContent(selector);
  return (text ?? "").replace(/[\u00a0\u202f]/g, " ").trim();
}
