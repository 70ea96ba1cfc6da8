"use strict";
/**
 * Light or dark: the system's choice unless the user picked one (kept in localStorage). A plain
 * script loaded in <head> before the styles apply, so a chosen theme shows from the first paint;
 * `#theme-select` switches it, and a `themechange` event on the document tells drawings to redraw.
 */
{
    const KEY = "theme";
    const root = document.documentElement;
    const system = typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : null;
    const chosen = () => {
        try {
            const value = localStorage.getItem(KEY);
            return value === "light" || value === "dark" ? value : "system";
        }
        catch {
            return "system";
        }
    };
    const apply = (choice) => {
        if (choice === "light" || choice === "dark")
            root.dataset.theme = choice;
        else
            delete root.dataset.theme;
        const dark = choice === "dark" || (choice === "system" && system?.matches === true);
        root.dataset.scheme = dark ? "dark" : "light";
        document.dispatchEvent(new CustomEvent("themechange", { detail: { dark } }));
    };
    apply(chosen());
    system?.addEventListener("change", () => apply(chosen()));
    document.addEventListener("DOMContentLoaded", () => {
        const select = document.getElementById("theme-select");
        if (!select)
            return;
        select.value = chosen();
        select.addEventListener("change", () => {
            try {
                if (select.value === "system")
                    localStorage.removeItem(KEY);
                else
                    localStorage.setItem(KEY, select.value);
            }
            catch {
                // Storage refused: the choice lasts as long as the page.
            }
            apply(select.value);
        });
    });
}
