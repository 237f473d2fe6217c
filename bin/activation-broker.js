#!/usr/bin/env node
// The CLI is bundled by `npm run build` (esbuild) into dist/; see src/entry/cli.ts.
import process from "node:process";
import { URL } from "node:url";

const bundle = new URL("../dist/activation-broker.mjs", import.meta.url);
try {
  await import(bundle.href);
} catch (error) {
  // Only the bundle itself missing means "not built"; anything else is the CLI's own failure.
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("activation-broker.mjs")) {
    throw error;
  }
  process.stderr.write("activation-broker: the CLI is not built yet: run `npm run build` first\n");
  process.exit(1);
}
