// Runs before `npm start` and `npm test` (package.json's prestart/pretest). npm puts
// node_modules/.bin first on PATH, so `node` here is the Node 24 that `npm ci` installs as an
// optional dependency (node-linux-<arch>, pinned in package.json) whatever Node runs npm itself.
// This script finds an older Node only where that package could not be installed: then one line
// that says why and what to do, instead of a run that fails later with messages that do not name
// the cause. Plain JavaScript any Node can parse.
import { existsSync } from "node:fs";
import process from "node:process";
import { URL } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  const command = process.env.npm_lifecycle_event?.replace(/^pre/, "npm ") ?? "this project";
  const pkg = `node-linux-${process.arch}`;
  const supported = process.platform === "linux" && ["x64", "arm64"].includes(process.arch);
  const installed = existsSync(new URL(`../node_modules/${pkg}/bin/node`, import.meta.url));
  const fix = !supported
    ? `npm ci brings Node 24 only on Linux x64 and arm64, this is ${process.platform}-${process.arch}: install Node 24 yourself (\`nvm install\` reads .nvmrc)`
    : installed
      ? "run it through npm (`npm start`, `npm test`, `npx …`), which puts node_modules/.bin and its Node 24 first on PATH"
      : `run \`npm ci\`: it installs Node 24 as the package ${pkg} (not with --omit=optional)`;
  process.stderr.write(`${command}: needs Node 24 or later, this is Node ${process.versions.node}: ${fix}\n`);
  process.exit(1);
}
