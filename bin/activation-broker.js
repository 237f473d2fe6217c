#!/usr/bin/env node
// `activation-broker`: the bundle `npm run build` writes (dist/), or, in a checkout that has not
// built it, the TypeScript itself through tsx (a devDependency `npm ci` installs), so
// `npx activation-broker` works right after `npm ci`. Plain JavaScript that any Node can parse,
// so an old Node hears what to do instead of failing on syntax.
import { existsSync } from "node:fs";
import process from "node:process";
import { URL } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `activation-broker: needs Node 24 or later, this is Node ${process.versions.node}: in a checkout, run \`npx activation-broker\` after \`npm ci\` (it installs Node 24); elsewhere install Node 24 (\`nvm install\` reads .nvmrc)\n`,
  );
  process.exit(2);
}

const bundle = new URL("../dist/activation-broker.mjs", import.meta.url);
if (existsSync(bundle)) {
  await import(bundle.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/entry/cli.ts", import.meta.url).href);
}
