// Copy the browser libraries from node_modules into static/vendor/, each with its licence, so the
// app serves them as static files (no CDN, no Node needed to run the app): uPlot draws the desk's
// chart, Swagger UI the API documentation page (/api/docs/).
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export const VENDORED = [
  ["node_modules/uplot/dist/uPlot.iife.min.js", "static/vendor/uplot/uPlot.iife.min.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "static/vendor/uplot/uPlot.min.css"],
  ["node_modules/uplot/LICENSE", "static/vendor/uplot/LICENSE"],
  ["node_modules/swagger-ui-dist/swagger-ui-bundle.js", "static/vendor/swagger-ui/swagger-ui-bundle.js"],
  ["node_modules/swagger-ui-dist/swagger-ui.css", "static/vendor/swagger-ui/swagger-ui.css"],
  ["node_modules/swagger-ui-dist/LICENSE", "static/vendor/swagger-ui/LICENSE"],
  ["node_modules/swagger-ui-dist/NOTICE", "static/vendor/swagger-ui/NOTICE"],
];

const PACKAGES = [
  ["uplot", "uPlot", "MIT licence, see static/vendor/uplot/LICENSE"],
  ["swagger-ui-dist", "Swagger UI", "Apache 2.0 licence, see static/vendor/swagger-ui/LICENSE and NOTICE"],
];

export function vendoredVersion(name = "uplot") {
  return JSON.parse(readFileSync(join(ROOT, `node_modules/${name}/package.json`), "utf8")).version;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [source, target] of VENDORED) {
    mkdirSync(dirname(join(ROOT, target)), { recursive: true });
    copyFileSync(join(ROOT, source), join(ROOT, target));
    console.log(`vendored ${target}`);
  }
  for (const [name, title, licence] of PACKAGES) console.log(`${title} ${vendoredVersion(name)} (${licence})`);
}
