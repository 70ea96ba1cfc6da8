// The desk's analysis panel in Debian's Chromium: a fundamental and a sentiment result explained.
//
// Run by tests/test_desk_analysis_browser.py, which starts the server with demo figures and
// headlines. The last stdout line is {"result": {...}}; the exit status is 0 only when every
// step passed. Environment: DESK_URL, DESK_USER, DESK_PASSWORD, DESK_SCREENSHOT, CHROMIUM.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

import { chromium } from "playwright-core";

const BASE = process.env.DESK_URL;
const TIMEOUT = 15000;
const steps = [];
const consoleErrors = [];

async function step(name, body) {
  try {
    steps.push({ name, ok: true, detail: await body() });
  } catch (error) {
    steps.push({ name, ok: false, error: String(error?.message ?? error) });
    throw error;
  }
}

async function analyse(page, kind) {
  await page.selectOption("#analysis-symbol", "SAP");
  await page.selectOption("#analysis-type", kind);
  await page.click('#analysis-form button[type="submit"]');
}

let browser;
let result = { ok: false };
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const page = await (await browser.newContext({ viewport: { width: 1366, height: 1400 }, locale: "de-DE" })).newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
  page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));

  await step("login opens the desk and it connects", async () => {
    await page.goto(`${BASE}/`);
    await page.fill("#id_username", process.env.DESK_USER);
    await page.fill("#id_password", process.env.DESK_PASSWORD);
    await page.click('form[action="/login/"] button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Verbunden");
  });

  await step("a fundamental analysis shows the metrics table, marked as demo data", async () => {
    await analyse(page, "fundamental");
    await page.locator("#analysis-result table.metrics tbody tr").first().waitFor();
    const rows = await page.locator("#analysis-result table.metrics tbody tr").allTextContents();
    const heading = await page.textContent("#analysis-result .recommendation");
    const notice = await page.textContent("#analysis-result .demo-notice");
    const basis = await page.textContent("#analysis-result .analysis-basis");
    if (rows.length !== 7) throw new Error(`${rows.length} metric rows`);
    if (!rows[0].startsWith("KGV") || !/(positiv|neutral|negativ)/.test(rows[0])) throw new Error(`first row: ${rows[0]}`);
    if (!rows[0].includes("Median")) throw new Error(`no peer comparison in: ${rows[0]}`);
    if (!heading.includes("Fundamentalanalyse")) throw new Error(`heading: ${heading}`);
    if (!notice.includes("Demo-Daten")) throw new Error(`notice: ${notice}`);
    if (!basis.includes("Quelle demo")) throw new Error(`basis: ${basis}`);
    return { heading, first: rows[0] };
  });

  await step("a sentiment analysis shows the headlines with their scores", async () => {
    await analyse(page, "sentiment");
    await page.locator("#analysis-result ol.headlines li").first().waitFor();
    const items = await page.locator("#analysis-result ol.headlines li").allTextContents();
    const strongest = await page.textContent("#analysis-result .strongest_positive");
    const heading = await page.textContent("#analysis-result .recommendation");
    if (items.length < 2) throw new Error(`${items.length} headlines`);
    if (!items.some((text) => text.includes("SAP übertrifft die Erwartungen"))) throw new Error(`headlines: ${items}`);
    if (!strongest.startsWith("Positivste Meldung")) throw new Error(`strongest: ${strongest}`);
    if (!heading.includes("Stimmungsanalyse")) throw new Error(`heading: ${heading}`);
    mkdirSync(dirname(process.env.DESK_SCREENSHOT), { recursive: true });
    await page.locator("section.analysis").screenshot({ path: process.env.DESK_SCREENSHOT });
    return { heading, strongest };
  });

  await step("no JavaScript errors on the console", async () => {
    if (consoleErrors.length > 0) throw new Error(JSON.stringify(consoleErrors));
  });
  result = { ok: true };
} catch (error) {
  result = { ok: false, error: String(error?.message ?? error) };
} finally {
  await browser?.close().catch(() => undefined);
}
process.stdout.write(JSON.stringify({ result: { ...result, steps, consoleErrors } }) + "\n");
process.exit(result.ok ? 0 : 1);
