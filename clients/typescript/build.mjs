// Compile the desk's client sources (static/ts) into dist/ as ES modules with .d.ts, using the
// repository's pinned TypeScript (run `npm ci` in the repository root first).
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(here, "../../node_modules/typescript/bin/tsc");
if (!existsSync(tsc)) {
  console.error("The repository's TypeScript is missing: run `npm ci` in the repository root.");
  process.exit(1);
}
rmSync(join(here, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json")], { stdio: "inherit" });
