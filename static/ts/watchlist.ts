/**
 * The board's watchlist: the symbols a user marked, and whether the board shows only them. Kept
 * in the browser's storage; with "only" on, the desk subscribes to the price events of these
 * symbols alone (`subscribe(types, {symbols})`).
 */

const STORAGE_KEY = "desk.watchlist";

interface Stored {
  symbols: string[];
  only: boolean;
}

type Storage = Pick<globalThis.Storage, "getItem" | "setItem">;

export class Watchlist {
  private readonly storage: Storage | null;
  private readonly symbols: Set<string>;
  private onlyWatched: boolean;

  constructor(storage: Storage | null) {
    this.storage = storage;
    const stored = Watchlist.read(storage);
    this.symbols = new Set(stored.symbols);
    this.onlyWatched = stored.only;
  }

  /** Return what the storage holds, or an empty list when it holds nothing readable. */
  private static read(storage: Storage | null): Stored {
    try {
      const value = JSON.parse(storage?.getItem(STORAGE_KEY) ?? "null") as Partial<Stored> | null;
      const symbols = Array.isArray(value?.symbols) ? value.symbols.filter((s): s is string => typeof s === "string") : [];
      return { symbols, only: value?.only === true };
    } catch {
      return { symbols: [], only: false };
    }
  }

  get size(): number {
    return this.symbols.size;
  }

  get only(): boolean {
    return this.onlyWatched;
  }

  set only(value: boolean) {
    this.onlyWatched = value;
    this.save();
  }

  has(symbol: string): boolean {
    return this.symbols.has(symbol);
  }

  /** Add a symbol, or remove it when it is on the list; return whether it is on it now. */
  toggle(symbol: string): boolean {
    if (!symbol) return false;
    if (this.symbols.has(symbol)) this.symbols.delete(symbol);
    else this.symbols.add(symbol);
    this.save();
    return this.symbols.has(symbol);
  }

  /**
   * Return the symbols to narrow price events to, the chart's symbol and the held symbols included
   * so the chart's last bar and the positions' values keep moving; null: all symbols (the list is
   * off or empty).
   */
  subscriptionSymbols(chartSymbol: string | null, held: Iterable<string> = []): string[] | null {
    if (!this.onlyWatched || this.symbols.size === 0) return null;
    const symbols = new Set(this.symbols);
    if (chartSymbol) symbols.add(chartSymbol);
    for (const symbol of held) symbols.add(symbol);
    return Array.from(symbols).sort();
  }

  private save(): void {
    try {
      this.storage?.setItem(STORAGE_KEY, JSON.stringify({ symbols: Array.from(this.symbols).sort(), only: this.onlyWatched }));
    } catch {
      // Storage full or refused (private mode): the list lasts as long as the page.
    }
  }
}
