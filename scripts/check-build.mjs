// Fail when the committed build under static/js/ or static/vendor/ differs from what the
// pinned compiler and the pinned packages produce now (run `make js` to refresh it).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

import { ROOT, VENDORED } from "./vendor.mjs";

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path).map((sub) => join(name, sub)) : [name];
  });
}

const problems = [];
const fresh = mkdtempSync(join(tmpdir(), "desk-js-"));
try {
  execFileSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", join(ROOT, "tsconfig.json"), "--outDir", fresh], {
    stdio: "inherit",
  });
  const committedDir = join(ROOT, "static/js");
  const expected = new Set(files(fresh));
  const committed = new Set(files(committedDir));
  for (const name of expected) {
    if (!committed.has(name)) problems.push(`static/js/${name} is missing`);
    else if (!readFileSync(join(fresh, name)).equals(readFileSync(join(committedDir, name))))
      problems.push(`static/js/${name} is stale (differs from a fresh tsc build)`);
  }
  for (const name of committed) {
    if (!expected.has(name)) problems.push(`static/js/${name} has no TypeScript source`);
  }
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
for (const [source, target] of VENDORED) {
  const targetPath = join(ROOT, target);
  if (!existsSync(targetPath)) problems.push(`${target} is missing`);
  else if (!readFileSync(join(ROOT, source)).equals(readFileSync(targetPath)))
    problems.push(`${target} differs from ${relative(ROOT, join(ROOT, source))}`);
}

if (problems.length > 0) {
  console.error("The committed JavaScript build is stale:\n  " + problems.join("\n  "));
  console.error("Run `make js` and commit static/js/ and static/vendor/.");
  process.exit(1);
}
console.log("static/js/ and static/vendor/ match a fresh build.");
