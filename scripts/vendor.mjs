// Copy the charting library from node_modules into static/vendor/, with its licence, so the
// desk serves it as a static file (no CDN, no Node needed to run the app).
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export const VENDORED = [
  ["node_modules/uplot/dist/uPlot.iife.min.js", "static/vendor/uplot/uPlot.iife.min.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "static/vendor/uplot/uPlot.min.css"],
  ["node_modules/uplot/LICENSE", "static/vendor/uplot/LICENSE"],
];

export function vendoredVersion() {
  return JSON.parse(readFileSync(join(ROOT, "node_modules/uplot/package.json"), "utf8")).version;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [source, target] of VENDORED) {
    mkdirSync(dirname(join(ROOT, target)), { recursive: true });
    copyFileSync(join(ROOT, source), join(ROOT, target));
    console.log(`vendored ${target}`);
  }
  console.log(`uPlot ${vendoredVersion()} (MIT licence, see static/vendor/uplot/LICENSE)`);
}
