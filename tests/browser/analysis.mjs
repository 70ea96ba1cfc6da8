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

// Run an analysis and return its heading and its findings as shown, once the result of `kind`
// (named `title` in the page's language) is on the page.
async function findings(page, kind, title) {
  await analyse(page, kind);
  await page.waitForFunction(
    (title) => document.querySelector("#analysis-result .recommendation")?.textContent.includes(title) &&
      document.querySelectorAll("#analysis-result ul.reasons li").length > 0,
    title,
  );
  return {
    heading: await page.textContent("#analysis-result .recommendation"),
    reasons: await page.locator("#analysis-result ul.reasons li").allTextContents(),
    codes: await page.locator("#analysis-result ul.reasons li").evaluateAll((items) => items.map((li) => li.dataset.code)),
    text: await page.textContent("#analysis-result"),
  };
}

// No finding may show as its code or an unfilled placeholder.
function rawLeft(shown) {
  return shown.reasons.filter((line) => /analysis_reason_|\{\w+(:\w+)?\}|\b(trend|rsi|momentum|metric|peers|sentiment)_[a-z_]+/.test(line));
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

  await step("German: a technical and a fundamental result give their findings in German words and numbers", async () => {
    const technical = await findings(page, "technical", "Technische Analyse");
    if (technical.codes.length !== 4) throw new Error(`technical findings: ${technical.codes}`);
    if (!/^(Aufwärtstrend|Abwärtstrend|Kein Trend): Der Schnitt der letzten 20 Kurse \(\d+(\.\d{3})*(,\d+)?\)/.test(technical.reasons[0])) {
      throw new Error(`trend: ${technical.reasons[0]}`);
    }
    if (!/^RSI \d+(,\d+)? /.test(technical.reasons[1])) throw new Error(`rsi: ${technical.reasons[1]}`);
    if (!/^(Kaufen|Verkaufen|Halten): Die Indikatoren/.test(technical.reasons[3])) throw new Error(`decision: ${technical.reasons[3]}`);
    if (!technical.text.includes("Begründung")) throw new Error("no reasons heading");
    const fundamental = await findings(page, "fundamental", "Fundamentalanalyse");
    if (!fundamental.reasons[0].startsWith("KGV ")) throw new Error(`first metric: ${fundamental.reasons[0]}`);
    const age = fundamental.reasons.find((line) => line.startsWith("Zahlen vom"));
    if (!/^Zahlen vom \d{2}\.\d{2}\.\d{4} \(Quelle demo\)/.test(age ?? "")) throw new Error(`data age: ${age}`);
    const raw = [...rawLeft(technical), ...rawLeft(fundamental)];
    if (raw.length) throw new Error(`raw codes: ${raw}`);
    return { trend: technical.reasons[0], decision: technical.reasons[3], age };
  });

  await step("English: the same results in English words and numbers after switching the language", async () => {
    await page.selectOption("#language-select", "en");
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('form.language button[type="submit"]')]);
    await page.waitForFunction(() => document.getElementById("connection-status")?.textContent === "Connected");
    const technical = await findings(page, "technical", "Technical analysis");
    if (!/^(Uptrend|Downtrend|No trend): the average of the last 20 prices \(\d+(,\d{3})*(\.\d+)?\)/.test(technical.reasons[0])) {
      throw new Error(`trend: ${technical.reasons[0]}`);
    }
    if (!/^(Buy|Sell|Hold): the indicators vote/.test(technical.reasons[3])) throw new Error(`decision: ${technical.reasons[3]}`);
    if (!/^SAP: (Buy|Sell|Hold)/.test(technical.heading)) throw new Error(`heading: ${technical.heading}`);
    if (!technical.text.includes("Reasons")) throw new Error("no reasons heading");
    const fundamental = await findings(page, "fundamental", "Fundamental analysis");
    if (!fundamental.reasons[0].startsWith("P/E ")) throw new Error(`first metric: ${fundamental.reasons[0]}`);
    const age = fundamental.reasons.find((line) => line.startsWith("Figures of"));
    if (!/^Figures of \d{1,2} [A-Z][a-z]{2,3} \d{4} \(source demo\)/.test(age ?? "")) throw new Error(`data age: ${age}`);
    const sentiment = await findings(page, "sentiment", "Sentiment analysis");
    if (!/^\d+ headlines: /.test(sentiment.reasons[0])) throw new Error(`polarity: ${sentiment.reasons[0]}`);
    const strongest = await page.textContent("#analysis-result .strongest_positive");
    if (!/^Most positive headline: “[^„]+” \(/.test(strongest)) throw new Error(`strongest: ${strongest}`);
    const german = /Kaufen|Verkaufen|Halten|Begründung|Zahlen vom|Meldungen|Konfidenz/;
    const leftover = [technical, fundamental, sentiment].flatMap((shown) => shown.reasons).filter((line) => german.test(line));
    const raw = [...rawLeft(technical), ...rawLeft(fundamental), ...rawLeft(sentiment)];
    if (leftover.length || raw.length) throw new Error(`German or raw left: ${[...leftover, ...raw]}`);
    mkdirSync(dirname(process.env.DESK_SCREENSHOT), { recursive: true });
    await page.locator("section.analysis").screenshot({ path: process.env.DESK_SCREENSHOT.replace(/\.png$/, "-en.png") });
    return { trend: technical.reasons[0], age, polarity: sentiment.reasons[0] };
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
