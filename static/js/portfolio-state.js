/**
 * The desk's portfolio: positions, cash and the account figures, revalued on every price tick.
 *
 * A `portfolio.update` (or the page's first snapshot) gives the positions; the account
 * (`/api/trading/account`) gives cash, reserved cash, realised P&L and each instrument's day
 * reference price; each `market.price_update` moves a held position's price. The figures are
 * worked out as the server's `portfolio_valuation` does, in exact decimals: market value
 * quantity × price, unrealised P&L value − cost, both rounded to cents; a position without a
 * price is valued at its cost. The day's change is quantity × (price − reference price), the
 * reference being the previous close, or else the session's first price.
 */
import { euros, percentOf, rescale, units } from "./money.js";
// Places of the figures as the server stores them (docs/trading.md).
const QUANTITY_PLACES = 4;
const PRICE_PLACES = 4;
const COST_PLACES = 6;
const MONEY_PLACES = 2;
// quantity × cost: the places of the exact products before rounding to cents.
const PRODUCT_PLACES = QUANTITY_PLACES + COST_PLACES;
/** A timestamp in ms, or null when absent or unreadable. */
function moment(value) {
    if (typeof value !== "string")
        return null;
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
}
export class PortfolioState {
    constructor() {
        this.holdings = new Map();
        this.cash = null;
        this.reserved = null;
        this.realized = null;
        this.references = new Map();
        this.feeRate = null; // 10^-6
        this.minFee = null; // cents
    }
    /** Take the positions of a `portfolio.update` (they replace those held so far).
     *
     * A snapshot can be older than the last tick seen (one replayed after a reconnect, or built
     * before a tick that overtook it): its price is taken unless a tick newer than the snapshot's
     * `last_price_at` is known. A snapshot without `last_price_at` (another service's) gives its
     * price as before. */
    applySnapshot(data) {
        const next = new Map();
        for (const position of data.positions ?? []) {
            const symbol = String(position.symbol ?? "");
            const quantity = units(position.quantity, QUANTITY_PLACES);
            if (!symbol || quantity === null)
                continue;
            const known = this.holdings.get(symbol);
            const snapshotPrice = units(position.last_price, PRICE_PLACES);
            const snapshotAt = moment(position.last_price_at);
            // A known moment always comes with its price (a tick's, or a snapshot's taken with it).
            const tickIsNewer = snapshotAt !== null && (known?.priceAt ?? -Infinity) > snapshotAt;
            const keepKnown = snapshotPrice === null || tickIsNewer;
            next.set(symbol, {
                symbol,
                name: String(position.name ?? known?.name ?? ""),
                quantity,
                avgCost: units(position.avg_cost, COST_PLACES) ?? 0n,
                price: keepKnown ? (known?.price ?? null) : snapshotPrice,
                priceAt: keepKnown ? (known?.priceAt ?? null) : snapshotAt,
            });
        }
        this.holdings = next;
    }
    /** Take the account figures (cash, reserved cash, realised P&L, day references, fees). */
    applyAccount(account) {
        this.cash = units(account.cash, MONEY_PLACES);
        this.reserved = units(account.reserved_cash, MONEY_PLACES);
        this.realized = units(account.realized_pnl, MONEY_PLACES);
        this.references.clear();
        for (const [symbol, reference] of Object.entries(account.day_references ?? {})) {
            const price = units(reference.price, PRICE_PLACES);
            if (price !== null)
                this.references.set(symbol, { price, kind: reference.kind });
        }
        if (account.fee_rate !== undefined)
            this.feeRate = units(account.fee_rate, 6);
        if (account.min_fee !== undefined)
            this.minFee = units(account.min_fee, MONEY_PLACES);
    }
    /** Move a held position to a new price ticked at `timestamp`; return whether the portfolio
     * holds the symbol. */
    applyTick(symbol, price, timestamp) {
        const holding = this.holdings.get(symbol);
        const value = units(price, PRICE_PLACES);
        if (!holding || value === null || value <= 0n)
            return false;
        holding.price = value;
        holding.priceAt = moment(timestamp);
        return true;
    }
    has(symbol) {
        return this.holdings.has(symbol);
    }
    /** Units of `symbol` held (0 when none). */
    quantityOf(symbol) {
        const holding = this.holdings.get(symbol);
        return holding ? Number(holding.quantity) / 10 ** QUANTITY_PLACES : 0;
    }
    /** The fee schedule, once the account gave it: rate as a fraction, minimum in euros. */
    fees() {
        if (this.feeRate === null || this.minFee === null)
            return null;
        return { rate: Number(this.feeRate) / 1e6, minimum: euros(this.minFee) };
    }
    rows() {
        return [...this.holdings.values()]
            .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))
            .map((holding) => {
            const { value, cost } = this.valueAndCost(holding);
            const reference = this.references.get(holding.symbol);
            const dayChange = reference && holding.price !== null
                ? euros(rescale(holding.quantity * (holding.price - reference.price), QUANTITY_PLACES + PRICE_PLACES, MONEY_PLACES))
                : null;
            return {
                symbol: holding.symbol,
                name: holding.name,
                quantity: Number(holding.quantity) / 10 ** QUANTITY_PLACES,
                avgCost: Number(holding.avgCost) / 10 ** COST_PLACES,
                price: holding.price === null ? null : Number(holding.price) / 10 ** PRICE_PLACES,
                marketValue: euros(rescale(value, PRODUCT_PLACES, MONEY_PLACES)),
                unrealized: euros(rescale(value - cost, PRODUCT_PLACES, MONEY_PLACES)),
                unrealizedPercent: percentOf(value - cost, cost),
                dayChange,
            };
        });
    }
    totals() {
        let value = 0n;
        let cost = 0n;
        let dayChange = 0n;
        let referenceValue = 0n;
        const referenceKinds = {};
        for (const holding of this.holdings.values()) {
            const figures = this.valueAndCost(holding);
            value += figures.value;
            cost += figures.cost;
            const reference = this.references.get(holding.symbol);
            if (reference && holding.price !== null) {
                dayChange += holding.quantity * (holding.price - reference.price);
                referenceValue += holding.quantity * reference.price;
                referenceKinds[holding.symbol] = reference.kind;
            }
        }
        const marketValue = rescale(value, PRODUCT_PLACES, MONEY_PLACES);
        const buyingPower = this.cash !== null && this.reserved !== null ? this.cash - this.reserved : null;
        return {
            cash: this.cash === null ? null : euros(this.cash),
            reservedCash: this.reserved === null ? null : euros(this.reserved),
            buyingPower: buyingPower === null ? null : euros(buyingPower > 0n ? buyingPower : 0n),
            marketValue: euros(marketValue),
            totalValue: this.cash === null ? null : euros(rescale(this.cash * 10n ** BigInt(PRODUCT_PLACES - MONEY_PLACES) + value, PRODUCT_PLACES, MONEY_PLACES)),
            unrealized: euros(rescale(value - cost, PRODUCT_PLACES, MONEY_PLACES)),
            unrealizedPercent: percentOf(value - cost, cost),
            realized: this.realized === null ? null : euros(this.realized),
            dayChange: euros(rescale(dayChange, QUANTITY_PLACES + PRICE_PLACES, MONEY_PLACES)),
            dayChangePercent: percentOf(dayChange, referenceValue),
            referenceKinds,
        };
    }
    /** Value (at the price, else at cost) and cost of a holding, exact, in 10^-PRODUCT_PLACES. */
    valueAndCost(holding) {
        const cost = holding.quantity * holding.avgCost;
        const value = holding.price === null ? cost : holding.quantity * holding.price * 10n ** BigInt(COST_PLACES - PRICE_PLACES);
        return { value, cost };
    }
}
