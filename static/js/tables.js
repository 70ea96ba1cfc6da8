/**
 * Narrow screens show the rows of a `table.stack` as blocks of labelled values (static/css/layout.css):
 * each cell gets its column's heading as `data-label`, also for rows a script adds later.
 */
/** Give each body cell of a table its column heading as `data-label`. */
export function labelCells(table) {
    const headings = Array.from(table.tHead?.rows[0]?.cells ?? []).map((cell) => cell.textContent?.trim() ?? "");
    for (const body of Array.from(table.tBodies)) {
        for (const row of Array.from(body.rows)) {
            let column = 0;
            for (const cell of Array.from(row.cells)) {
                const label = headings[column] ?? "";
                if (label && cell.colSpan === 1)
                    cell.dataset.label = label;
                column += cell.colSpan;
            }
        }
    }
}
function watch(table) {
    labelCells(table);
    new MutationObserver(() => labelCells(table)).observe(table, { childList: true, subtree: true });
}
function start() {
    document.querySelectorAll("table.stack").forEach(watch);
}
if (document.readyState === "loading")
    document.addEventListener("DOMContentLoaded", start);
else
    start();
