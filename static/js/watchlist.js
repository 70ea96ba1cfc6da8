/**
 * The board's watchlist: the symbols a user marked, and whether the board shows only them. Kept
 * in the browser's storage; with "only" on, the desk subscribes to the price events of these
 * symbols alone (`subscribe(types, {symbols})`).
 */
const STORAGE_KEY = "desk.watchlist";
export class Watchlist {
    constructor(storage) {
        this.storage = storage;
        const stored = Watchlist.read(storage);
        this.symbols = new Set(stored.symbols);
        this.onlyWatched = stored.only;
    }
    /** Return what the storage holds, or an empty list when it holds nothing readable. */
    static read(storage) {
        try {
            const value = JSON.parse(storage?.getItem(STORAGE_KEY) ?? "null");
            const symbols = Array.isArray(value?.symbols) ? value.symbols.filter((s) => typeof s === "string") : [];
            return { symbols, only: value?.only === true };
        }
        catch {
            return { symbols: [], only: false };
        }
    }
    get size() {
        return this.symbols.size;
    }
    get only() {
        return this.onlyWatched;
    }
    set only(value) {
        this.onlyWatched = value;
        this.save();
    }
    has(symbol) {
        return this.symbols.has(symbol);
    }
    /** Add a symbol, or remove it when it is on the list; return whether it is on it now. */
    toggle(symbol) {
        if (!symbol)
            return false;
        if (this.symbols.has(symbol))
            this.symbols.delete(symbol);
        else
            this.symbols.add(symbol);
        this.save();
        return this.symbols.has(symbol);
    }
    /**
     * Return the symbols to narrow price events to, the chart's symbol and the held symbols included
     * so the chart's last bar and the positions' values keep moving; null: all symbols (the list is
     * off or empty).
     */
    subscriptionSymbols(chartSymbol, held = []) {
        if (!this.onlyWatched || this.symbols.size === 0)
            return null;
        const symbols = new Set(this.symbols);
        if (chartSymbol)
            symbols.add(chartSymbol);
        for (const symbol of held)
            symbols.add(symbol);
        return Array.from(symbols).sort();
    }
    save() {
        try {
            this.storage?.setItem(STORAGE_KEY, JSON.stringify({ symbols: Array.from(this.symbols).sort(), only: this.onlyWatched }));
        }
        catch {
            // Storage full or refused (private mode): the list lasts as long as the page.
        }
    }
}
