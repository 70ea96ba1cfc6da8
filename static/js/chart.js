/**
 * The desk's price chart: OHLC bars of the stored ticks (GET /api/market/bars) drawn as candles
 * with volume by the vendored uPlot, a range switch, axes in the page's language, and the last
 * bar moved by live ticks. The bar arithmetic and the formatting are plain functions, so the
 * node tests run them without a browser.
 */
import { fill, formatEuro, formatNumber } from "./format.js";
export const RANGE_SECONDS = {
    "15m": 900,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
    "1w": 604800,
    all: null,
};
export const DEFAULT_RANGE = "1h";
/** Return the series of a bars response, prices as numbers for drawing. */
export function seriesFromResponse(response) {
    const end = Date.parse(response.end) / 1000;
    return {
        symbol: response.symbol,
        range: response.range,
        barSeconds: response.bar_seconds,
        spanSeconds: RANGE_SECONDS[response.range] ?? null,
        loadedUntil: Number.isFinite(end) ? end : 0,
        bars: response.bars
            .map((bar) => ({
            time: bar.time,
            open: Number(bar.open),
            high: Number(bar.high),
            low: Number(bar.low),
            close: Number(bar.close),
            volume: bar.volume,
        }))
            .sort((a, b) => a.time - b.time),
    };
}
/**
 * Put a live tick into the series: into the last bar when it falls in that bar's time, else as
 * a new bar (the bars between stay gaps). A tick the loaded bars hold already, or older than the
 * last bar, changes nothing. Bars that left the range are dropped. Return whether it changed.
 */
export function applyTick(series, tick) {
    if (!Number.isFinite(tick.time) || !Number.isFinite(tick.price) || tick.time <= series.loadedUntil)
        return false;
    const start = Math.floor(tick.time / series.barSeconds) * series.barSeconds;
    const last = series.bars[series.bars.length - 1];
    if (last && start < last.time)
        return false;
    if (last && start === last.time) {
        last.high = Math.max(last.high, tick.price);
        last.low = Math.min(last.low, tick.price);
        last.close = tick.price;
        last.volume += tick.volume;
    }
    else {
        series.bars.push({ time: start, open: tick.price, high: tick.price, low: tick.price, close: tick.price, volume: tick.volume });
    }
    if (series.spanSeconds !== null) {
        const barsInRange = Math.ceil(series.spanSeconds / series.barSeconds);
        const oldest = start - (barsInRange - 1) * series.barSeconds;
        while (series.bars.length > 0 && series.bars[0].time < oldest)
            series.bars.shift();
    }
    return true;
}
/** Return the time window the chart spans: the range up to now, or all bars. */
export function timeWindow(series) {
    const bars = series.bars;
    const lastEnd = bars.length > 0 ? bars[bars.length - 1].time + series.barSeconds : series.loadedUntil;
    const end = Math.max(series.loadedUntil, lastEnd);
    if (series.spanSeconds !== null)
        return [end - series.spanSeconds, end];
    return [bars.length > 0 ? bars[0].time : end - series.barSeconds, end];
}
/** Return the bars as uPlot's columns: time, open, high, low, close, volume. */
export function columns(series) {
    const data = [[], [], [], [], [], []];
    for (const bar of series.bars) {
        data[0].push(bar.time);
        data[1].push(bar.open);
        data[2].push(bar.high);
        data[3].push(bar.low);
        data[4].push(bar.close);
        data[5].push(bar.volume);
    }
    return data;
}
/**
 * Return a formatter for the time axis's ticks in `locale`: times of day within a day,
 * day and month with the time within a few days, dates beyond.
 */
export function timeAxisFormatter(locale, spanSeconds, timeZone) {
    const options = spanSeconds <= 86400
        ? { hour: "2-digit", minute: "2-digit", ...(spanSeconds <= 1800 ? { second: "2-digit" } : {}) }
        : spanSeconds <= 7 * 86400
            ? { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" }
            : { day: "2-digit", month: "2-digit", year: "numeric" };
    const format = new Intl.DateTimeFormat(locale, { ...options, ...(timeZone ? { timeZone } : {}) });
    return (seconds) => format.format(new Date(seconds * 1000));
}
/** Return the text that says what the chart shows, for the caption and screen readers. */
export function chartSummary(series, strings, locale) {
    const last = series.bars[series.bars.length - 1];
    if (!last)
        return fill(strings.chart_empty ?? "{symbol}: –", { symbol: series.symbol });
    const first = series.bars[0];
    const format = timeAxisFormatter(locale, Math.max(series.barSeconds, last.time - first.time));
    return fill(strings.chart_summary ?? "{symbol} {count} {from}–{to} {last}", {
        symbol: series.symbol,
        count: formatNumber(series.bars.length, locale, 0),
        from: format(first.time),
        to: format(last.time + series.barSeconds),
        last: formatEuro(last.close, locale),
    });
}
/** Read a colour of the page's theme (custom properties), so the canvas follows light and dark. */
function themeColor(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
}
export class PriceChart {
    constructor(options) {
        this.series = null;
        this.plot = null;
        this.symbol = null;
        this.range = DEFAULT_RANGE;
        /** Ticks that arrive while bars load; those after the loaded moment are applied after it. */
        this.pending = null;
        this.loads = 0;
        this.resizeObserver = null;
        this.options = options;
        if (typeof ResizeObserver !== "undefined") {
            this.resizeObserver = new ResizeObserver(() => this.resize());
            this.resizeObserver.observe(options.target);
        }
    }
    get currentRange() {
        return this.range;
    }
    /** The bars drawn now (for the browser tests and the console). */
    get bars() {
        return this.series?.bars ?? [];
    }
    async show(symbol, range = this.range) {
        this.symbol = symbol;
        this.range = range in RANGE_SECONDS ? range : DEFAULT_RANGE;
        await this.reload();
    }
    /** Load the bars of the current symbol and range from the server and redraw. */
    async reload() {
        const symbol = this.symbol;
        const load = ++this.loads;
        this.pending = [];
        if (!symbol) {
            this.series = null;
            this.redraw(true);
            return;
        }
        this.options.target.setAttribute("aria-busy", "true");
        try {
            const url = `${this.options.barsUrl}?${new URLSearchParams({ symbol, range: this.range })}`;
            const response = await (this.options.fetch ?? fetch)(url, {
                credentials: "same-origin",
                headers: { Accept: "application/json" },
            });
            if (!response.ok)
                throw new Error(`HTTP ${response.status}`);
            const series = seriesFromResponse((await response.json()));
            if (load !== this.loads)
                return; // a newer symbol or range was asked for meanwhile
            for (const tick of this.pending ?? [])
                if (tick.symbol === series.symbol)
                    applyTick(series, tick);
            this.series = series;
            this.redraw(true);
        }
        catch {
            if (load !== this.loads)
                return;
            this.series = null;
            this.redraw(true);
            this.setCaption(fill(this.options.strings.chart_failed ?? "–", { symbol }));
        }
        finally {
            if (load === this.loads) {
                this.pending = null;
                this.options.target.setAttribute("aria-busy", "false");
            }
        }
    }
    /** Move the last bar (or start a new one) with a live tick of `symbol`. */
    tick(symbol, time, price, volume) {
        if (symbol !== this.symbol)
            return;
        if (this.pending) {
            this.pending.push({ symbol, time, price, volume });
            return;
        }
        if (this.series && applyTick(this.series, { time, price, volume }))
            this.redraw(false);
    }
    setCaption(text) {
        if (this.options.caption)
            this.options.caption.textContent = text;
        this.options.target.setAttribute("aria-label", text);
    }
    redraw(rebuild) {
        const series = this.series;
        if (series)
            this.setCaption(chartSummary(series, this.options.strings, this.options.locale));
        else if (this.symbol === null)
            this.setCaption("");
        const UPlot = globalThis.uPlot;
        if (!UPlot)
            return;
        if (rebuild || !this.plot) {
            this.plot?.destroy();
            this.plot = null;
            if (!series)
                return;
            this.plot = new UPlot(this.plotOptions(series), columns(series), this.options.target);
        }
        else if (series) {
            this.plot.setData(columns(series));
        }
    }
    /** Redraw with the current theme's colours (after a switch between light and dark). */
    restyle() {
        this.redraw(true);
    }
    resize() {
        if (this.plot)
            this.plot.setSize(this.size());
    }
    size() {
        const width = Math.max(200, Math.floor(this.options.target.clientWidth || 320));
        return { width, height: width < 500 ? 220 : 280 };
    }
    plotOptions(series) {
        const locale = this.options.locale;
        const text = themeColor("--fg", "#1d2430");
        const grid = themeColor("--grid", "#e3e6ea");
        const [from, to] = timeWindow(series);
        const timeFormat = timeAxisFormatter(locale, to - from);
        const priceFormat = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
        const axis = (extra) => ({ stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, ...extra });
        const hidden = { paths: () => null, points: { show: false } };
        return {
            ...this.size(),
            legend: { show: false },
            cursor: { points: { show: false } },
            scales: {
                // The whole range, not just the span of its bars: one bar in a quiet hour is one bar in an hour.
                x: { time: true, range: () => timeWindow(series) },
                y: { auto: true },
                // Volume fills the lowest fifth of the plot.
                volume: { range: (_u, _min, max) => [0, Math.max(1, max) * 5] },
            },
            series: [
                {},
                { label: "open", scale: "y", ...hidden },
                { label: "high", scale: "y", ...hidden },
                { label: "low", scale: "y", ...hidden },
                { label: "close", scale: "y", ...hidden },
                { label: "volume", scale: "volume", ...hidden },
            ],
            axes: [
                axis({ values: (_u, splits) => splits.map(timeFormat) }),
                axis({ size: 64, values: (_u, splits) => splits.map((value) => priceFormat.format(value)) }),
            ],
            hooks: { draw: [(u) => this.drawCandles(u, series.barSeconds)] },
        };
    }
    drawCandles(u, barSeconds) {
        const [times, open, high, low, close, volume] = u.data;
        const ctx = u.ctx;
        const up = themeColor("--up", "#086b32");
        const down = themeColor("--down", "#b3261e");
        const pixelsPerBar = Math.abs(u.valToPos(barSeconds, "x", true) - u.valToPos(0, "x", true));
        const width = Math.max(1, Math.min(24, pixelsPerBar * 0.7));
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        const base = u.valToPos(0, "volume", true);
        for (let i = 0; i < times.length; i += 1) {
            const x = u.valToPos(times[i] + barSeconds / 2, "x", true);
            const rising = close[i] >= open[i];
            ctx.fillStyle = ctx.strokeStyle = rising ? up : down;
            ctx.globalAlpha = 0.35;
            const top = u.valToPos(volume[i], "volume", true);
            ctx.fillRect(x - width / 2, top, width, base - top);
            ctx.globalAlpha = 1;
            ctx.lineWidth = Math.max(1, globalThis.devicePixelRatio || 1);
            ctx.beginPath();
            ctx.moveTo(Math.round(x), u.valToPos(high[i], "y", true));
            ctx.lineTo(Math.round(x), u.valToPos(low[i], "y", true));
            ctx.stroke();
            const yOpen = u.valToPos(open[i], "y", true);
            const yClose = u.valToPos(close[i], "y", true);
            ctx.fillRect(x - width / 2, Math.min(yOpen, yClose), width, Math.max(1, Math.abs(yClose - yOpen)));
        }
        ctx.restore();
    }
}
