// Every screen, every user: the chart's history, symbol choice, watchlist, layout at phone and
// tablet widths, dark mode, accessibility (axe-core), API docs and monitoring, in Debian's
// Chromium driven by Playwright (playwright-core; no downloaded browser).
//
// Run by tests/test_desk_layout_browser.py, which owns the server. Each scenario runs in a
// browser context of its own (a failed one does not stop the others) and fails on console
// errors, failed requests and Content-Security-Policy violations of its pages. The last stdout
// line is {"result": {...}}; the exit status is 0 only when every scenario passed.
//
// Environment: DESK_URL, DESK_USER, DESK_PASSWORD, MONITOR_USER, MONITOR_PASSWORD, ARTIFACTS
// (directory for the screenshots), CHROMIUM, STEP_TIMEOUT_MS.
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

import { chromium } from "playwright-core";

const BASE = process.env.DESK_URL ?? "http://127.0.0.1:8000";
const USER = process.env.DESK_USER ?? "anna";
const PASSWORD = process.env.DESK_PASSWORD ?? "anna-pass-1234";
const MONITOR_USER = process.env.MONITOR_USER ?? "otto";
const MONITOR_PASSWORD = process.env.MONITOR_PASSWORD ?? "otto-pass-1234";
const ARTIFACTS = process.env.ARTIFACTS ?? "test-artifacts";
const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS ?? 20000);
const PHONE = { width: 390, height: 844 };
const TABLET = { width: 900, height: 1000 };
const WIDE = { width: 1440, height: 900 };

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
const scenarios = [];
const sessions = new Map();

/** Log in once per user through the form; scenarios start from the stored cookies. */
async function session(user, password) {
  if (!sessions.has(user)) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/login/`);
    await page.fill("#id_username", user);
    await page.fill("#id_password", password);
    await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/login/")), page.click('main form button[type="submit"]')]);
    sessions.set(user, await context.storageState());
    await context.close();
  }
  return sessions.get(user);
}

/** A fresh context with listeners that collect what must not happen on any page. */
async function open({ user = USER, password = PASSWORD, viewport = WIDE, colorScheme = "light", language = "de", anonymous = false } = {}) {
  const storageState = anonymous ? undefined : await session(user, password);
  const context = await browser.newContext({ viewport, colorScheme, locale: language === "en" ? "en-GB" : "de-DE", storageState });
  await context.addCookies([{ name: "django_language", value: language, url: BASE }]);
  const problems = [];
  await context.exposeBinding("reportCspViolation", (_source, violation) => problems.push({ csp: violation }));
  await context.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (event) =>
      window.reportCspViolation({ directive: event.violatedDirective, blocked: event.blockedURI }),
    ),
  );
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (message) => {
    if (message.type() === "error") problems.push({ console: message.text(), url: page.url() });
  });
  page.on("pageerror", (error) => problems.push({ pageerror: error.message }));
  page.on("requestfailed", (request) => {
    // A page left (reload, navigation) aborts its socket and pending requests: not a failure.
    if (request.failure()?.errorText !== "net::ERR_ABORTED") problems.push({ failed: request.url(), error: request.failure()?.errorText });
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push({ status: response.status(), url: response.url() });
  });
  return { context, page, problems };
}

async function scenario(name, body) {
  const started = Date.now();
  let opened = null;
  const use = async (options) => {
    opened = await open(options);
    return opened;
  };
  try {
    const detail = await body(use);
    if (opened && opened.problems.length > 0) throw new Error(`console errors, failed requests or CSP violations: ${JSON.stringify(opened.problems)}`);
    scenarios.push({ name, ok: true, ms: Date.now() - started, ...(detail ? { detail } : {}) });
  } catch (error) {
    scenarios.push({ name, ok: false, ms: Date.now() - started, error: String(error?.stack ?? error), problems: opened?.problems });
  } finally {
    await opened?.context.close().catch(() => undefined);
  }
}

/** Open the desk and wait until its chart shows bars. */
async function desk(page) {
  await page.goto(`${BASE}/`);
  await page.waitForFunction(() => (window.portfolioWS?.chart?.bars?.length ?? 0) > 0);
}

/** Return the bars the chart shows and those the server has stored for the same symbol and range. */
async function chartAgainstServer(page) {
  return page.evaluate(async () => {
    const chart = window.portfolioWS.chart;
    const symbol = document.getElementById("chart-symbol").textContent;
    const response = await fetch(`/api/market/bars?symbol=${symbol}&range=${chart.currentRange}`, { headers: { Accept: "application/json" } });
    const stored = (await response.json()).bars;
    return {
      symbol,
      range: chart.currentRange,
      shown: chart.bars.map((bar) => bar.time),
      stored: stored.map((bar) => bar.time),
      canvas: document.querySelectorAll("#price-chart canvas").length,
      caption: document.getElementById("chart-caption").textContent,
    };
  });
}

function assertHistory(state) {
  if (state.canvas < 1) throw new Error("no chart canvas");
  if (state.stored.length < 5) throw new Error(`the server has only ${state.stored.length} bars`);
  // Every stored bar is shown; live ticks may have added newer ones.
  const missing = state.stored.slice(0, -1).filter((time) => !state.shown.includes(time));
  if (missing.length > 0) throw new Error(`stored bars missing from the chart: ${missing.length} of ${state.stored.length}`);
  if (!state.caption.includes(state.symbol) || !/\d+ Kerzen|\d+ candles/.test(state.caption)) throw new Error(`caption: ${state.caption}`);
}

/** Return the axe-core violations of impact serious or critical on the page as it is now. */
async function axeViolations(page) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations);
  return violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => ({ id: violation.id, impact: violation.impact, nodes: violation.nodes.slice(0, 5).map((node) => node.target.join(" ")) }));
}

/** Fail when the page is wider than the window, or a visible control lies outside it or cannot be clicked. */
async function assertFits(page) {
  const overflow = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  if (overflow.scrollWidth > overflow.innerWidth) throw new Error(`the page scrolls sideways: ${JSON.stringify(overflow)}`);
  // No table spills out of its card over the next one (the page itself may still fit).
  const spilled = await page.evaluate(() =>
    [...document.querySelectorAll(".card table")]
      .map((table) => ({ id: table.id, table: table.getBoundingClientRect(), card: table.closest(".card").getBoundingClientRect() }))
      .filter(({ table, card }) => table.width > 0 && (table.right > card.right + 0.5 || table.left < card.left - 0.5))
      .map(({ id, table, card }) => `${id}: ${Math.round(table.left)}–${Math.round(table.right)} in ${Math.round(card.left)}–${Math.round(card.right)}`),
  );
  if (spilled.length > 0) throw new Error(`tables wider than their cards: ${spilled.join("; ")}`);
  const controls = page.locator("header button:visible, header select:visible, header a:visible, main button:visible, main select:visible");
  const count = await controls.count();
  for (let index = 0; index < count; index += 1) {
    const control = controls.nth(index);
    await control.scrollIntoViewIfNeeded();
    const box = await control.boundingBox();
    if (!box || box.x < 0 || box.x + box.width > overflow.innerWidth + 0.5) {
      throw new Error(`control ${index} (${await control.evaluate((node) => node.outerHTML.slice(0, 120))}) is outside the window: ${JSON.stringify(box)}`);
    }
    if (await control.isEnabled()) await control.click({ trial: true, timeout: 5000 });
  }
  return { ...overflow, controls: count };
}

try {
  await scenario("the chart shows the stored history on load and again after a reload", async (use) => {
    const { page } = await use();
    await desk(page);
    const first = await chartAgainstServer(page);
    assertHistory(first);
    await page.reload();
    await page.waitForFunction(() => (window.portfolioWS?.chart?.bars?.length ?? 0) > 0);
    const second = await chartAgainstServer(page);
    assertHistory(second);
    return { bars: [first.shown.length, second.shown.length], caption: second.caption };
  });

  await scenario("a symbol chosen on the board is chosen in chart, ticket, alerts and analysis; ranges switch", async (use) => {
    const { page } = await use();
    await desk(page);
    const loaded = page.waitForResponse((response) => response.url().includes("/api/market/bars?symbol=SIE"));
    await page.click('#price-board button.select-symbol[data-symbol="SIE"]');
    await loaded;
    await page.waitForFunction(() => document.getElementById("chart-caption")?.textContent.startsWith("SIE"));
    const chosen = await page.evaluate(() => ["order-symbol", "alert-symbol", "analysis-symbol"].map((id) => document.getElementById(id).value));
    if (chosen.some((value) => value !== "SIE")) throw new Error(`forms show ${chosen}`);
    const day = page.waitForResponse((response) => response.url().includes("range=1d") && response.status() === 200);
    await page.click('#chart-ranges button[data-range="1d"]');
    await day;
    if ((await page.getAttribute('#chart-ranges button[data-range="1d"]', "aria-pressed")) !== "true") throw new Error("1d not pressed");
    await page.waitForFunction(() => window.portfolioWS.chart.currentRange === "1d" && window.portfolioWS.chart.bars.length > 0);
    // Choosing in the ticket chooses everywhere too.
    const back = page.waitForResponse((response) => response.url().includes("/api/market/bars?symbol=SAP&range=1d"));
    await page.selectOption("#order-symbol", "SAP");
    await back;
    if ((await page.textContent("#chart-symbol")) !== "SAP") throw new Error("the chart did not follow the ticket");
    return { chosen };
  });

  await scenario("the watchlist narrows the board and its price subscription, and survives a reload", async (use) => {
    const { page } = await use();
    const narrowed = new Promise((resolve) =>
      page.on("websocket", (socket) =>
        socket.on("framesent", (frame) => {
          const message = JSON.parse(String(frame.payload));
          if (message.type === "subscription" && message.event === "subscribe" && JSON.stringify(message.data?.symbols) === '["SAP"]') resolve(message);
        }),
      ),
    );
    await desk(page);
    await page.waitForFunction(() => document.getElementById("connection-status")?.classList.contains("success"));
    await page.click('#price-board button.select-symbol[data-symbol="SAP"]');
    await page.click('#price-board button.watch[data-symbol="SAP"]');
    await page.check("#watchlist-only");
    await page.waitForFunction(() => document.querySelector('#price-board tr[data-symbol="SIE"]').hidden);
    const subscription = await Promise.race([
      narrowed,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no subscription narrowed to SAP was sent")), TIMEOUT)),
    ]);
    await page.reload();
    await page.waitForFunction(() => document.getElementById("watchlist-only")?.checked && document.querySelector('#price-board tr[data-symbol="SIE"]').hidden);
    if (await page.isHidden('#price-board tr[data-symbol="SAP"]')) throw new Error("the watched row is hidden");
    return { subscription: subscription.data };
  });

  for (const [label, viewport] of [["phone", PHONE], ["tablet", TABLET], ["wide", WIDE]]) {
    await scenario(`at ${viewport.width} px nothing scrolls sideways and every action, cancel included, is reachable`, async (use) => {
      const { page } = await use({ viewport });
      // The blotter is drawn on load and again once the socket is up, and the reconnect controls
      // hide then: measure the connected desk once those loads are done.
      await desk(page);
      await page.waitForFunction(() => document.getElementById("connection-status")?.classList.contains("success"));
      await page.waitForLoadState("networkidle");
      await page.waitForSelector("#order-history[aria-busy='false'] tbody tr[data-status='open'] button.cancel-order");
      const cancel = page.locator("#order-history button.cancel-order").first();
      await cancel.scrollIntoViewIfNeeded();
      if (!(await cancel.isVisible())) throw new Error("the cancel button is not visible");
      return { [label]: await assertFits(page) };
    });
  }

  await scenario("dark mode follows the system, can be switched, and the choice survives a reload", async (use) => {
    const { page } = await use({ colorScheme: "dark" });
    await desk(page);
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const dark = await background();
    if ((await page.getAttribute("html", "data-scheme")) !== "dark") throw new Error("the system's dark scheme is not followed");
    await page.selectOption("#theme-select", "light");
    const light = await background();
    if (light === dark) throw new Error("switching to light changed nothing");
    await page.reload();
    await page.waitForFunction(() => document.documentElement.dataset.scheme === "light");
    if ((await page.inputValue("#theme-select")) !== "light") throw new Error("the switch does not show the choice");
    return { dark, light };
  });

  for (const colorScheme of ["light", "dark"]) {
    await scenario(`axe-core finds no serious or critical violations on desk, login and monitoring (${colorScheme})`, async (use) => {
      const found = {};
      const anonymous = await open({ anonymous: true, colorScheme });
      try {
        await anonymous.page.goto(`${BASE}/login/`);
        found.login = await axeViolations(anonymous.page);
        if (anonymous.problems.length > 0) throw new Error(`login page: ${JSON.stringify(anonymous.problems)}`);
      } finally {
        await anonymous.context.close();
      }
      const { page } = await use({ user: MONITOR_USER, password: MONITOR_PASSWORD, colorScheme });
      await page.goto(`${BASE}/monitoring/`);
      await page.waitForSelector("#health li[data-service]");
      found.monitoring = await axeViolations(page);
      await page.goto(`${BASE}/monitoring/inspector/`);
      found.inspector = await axeViolations(page);
      await desk(page);
      found.desk = await axeViolations(page);
      const failing = Object.entries(found).filter(([, violations]) => violations.length > 0);
      if (failing.length > 0) throw new Error(`axe violations: ${JSON.stringify(Object.fromEntries(failing))}`);
      return { pages: Object.keys(found) };
    });
  }

  await scenario("the API documentation is served locally, interactive, and lists the bars endpoint", async (use) => {
    const { page } = await use();
    await page.goto(`${BASE}/api/docs/`);
    const bars = page.locator(".opblock-summary-path", { hasText: "/api/market/bars" }).first();
    await bars.waitFor();
    const external = await page.evaluate(() =>
      performance.getEntriesByType("resource").map((entry) => entry.name).filter((url) => !url.startsWith(location.origin)),
    );
    if (external.length > 0) throw new Error(`loaded from elsewhere: ${external}`);
    await bars.click();
    await page.locator(".try-out__btn").first().waitFor();
    return { title: await page.title() };
  });

  await scenario("every page names its icon, links desk, monitoring, admin and docs, and has its own title", async (use) => {
    const { page } = await use({ user: MONITOR_USER, password: MONITOR_PASSWORD });
    const titles = [];
    for (const path of ["/", "/monitoring/", "/monitoring/inspector/", "/api/docs/", "/admin/"]) {
      await page.goto(`${BASE}${path}`);
      titles.push(await page.title());
      const icon = await page.getAttribute('link[rel="icon"]', "href");
      if (!icon) throw new Error(`${path} names no icon`);
      if (path !== "/admin/") {
        const links = await page.$$eval(".main-nav a", (anchors) => anchors.map((anchor) => new URL(anchor.href).pathname));
        for (const target of ["/", "/monitoring/", "/admin/", "/api/docs/"]) {
          if (!links.includes(target)) throw new Error(`${path}: no link to ${target} in ${links}`);
        }
      }
    }
    const favicon = await page.request.get(`${BASE}/favicon.ico`);
    if (!favicon.ok()) throw new Error(`/favicon.ico answers ${favicon.status()}`);
    if (new Set(titles).size !== titles.length) throw new Error(`titles repeat: ${titles}`);
    return { titles };
  });

  await scenario("monitoring shows health, rate graphs, errors apart from refusals, and inspector rows with seq", async (use) => {
    const { page } = await use({ user: MONITOR_USER, password: MONITOR_PASSWORD });
    await page.goto(`${BASE}/monitoring/`);
    await page.waitForSelector('#health li[data-service="database"][data-status="online"]');
    const services = await page.$$eval("#health li[data-service]", (items) => items.map((item) => item.dataset.service));
    for (const name of ["database", "channel_layer", "market_feed", "gateway"]) {
      if (!services.includes(name)) throw new Error(`health panel lacks ${name}: ${services}`);
    }
    if (!/\d+ \/ 100/.test((await page.textContent("#overall-health")) ?? "")) throw new Error("no overall health");
    await page.waitForFunction(() => document.querySelectorAll("#sparklines svg polyline").length === 4);
    if ((await page.locator("#errors").count()) !== 1 || (await page.locator("#refusals").count()) !== 1) throw new Error("errors and refusals are not apart");
    await page.goto(`${BASE}/monitoring/inspector/`);
    await page.waitForFunction(() => document.getElementById("connection-status")?.classList.contains("success"));
    if (!(await page.isChecked('input[value="trading.order_filled"]'))) throw new Error("the inspector opens with nothing sensible chosen");
    await page.check('input[value="market.price_update"]');
    await page.locator("#stream li summary", { hasText: "market.price_update" }).first().waitFor();
    await page.click("#pause"); // the list holds still while the row is opened
    const item = page.locator("#stream li", { hasText: "market.price_update" }).first();
    const summary = await item.locator("summary").textContent();
    if (!/seq \d+/.test(summary ?? "")) throw new Error(`row without seq: ${summary}`);
    if (await item.locator("pre").isVisible()) throw new Error("rows are not compact");
    await item.locator("summary").click();
    if (!(await item.locator("pre").isVisible())) throw new Error("a row does not open");
    return { services, summary };
  });

  mkdirSync(ARTIFACTS, { recursive: true });
  for (const language of ["de", "en"]) {
    for (const colorScheme of ["light", "dark"]) {
      for (const [size, viewport] of [["phone", PHONE], ["wide", WIDE]]) {
        await scenario(`screenshot of the desk: ${language}, ${colorScheme}, ${size}`, async (use) => {
          const { page } = await use({ viewport, colorScheme, language });
          await desk(page);
          await page.waitForFunction((lang) => document.documentElement.lang === lang, language);
          await page.waitForFunction(() => document.getElementById("connection-status")?.classList.contains("success"));
          const path = join(ARTIFACTS, `desk-${language}-${colorScheme}-${size}.png`);
          await page.screenshot({ path, fullPage: true });
          return { path };
        });
      }
    }
  }
} finally {
  await browser.close().catch(() => undefined);
}
const ok = scenarios.length > 0 && scenarios.every((entry) => entry.ok);
process.stdout.write(JSON.stringify({ result: { ok, scenarios } }) + "\n");
process.exit(ok ? 0 : 1);
