/**
 * `npm run build`: bundles the standalone CLI (src/entry/cli.ts) into dist/activation-broker.mjs
 * for `activation-broker serve`. The Lambda bundle is built by the CDK app (infra/).
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { AGENT_SCRIPTS_BUNDLING } from "./bundling";

export async function buildCli(outfile = "dist/activation-broker.mjs"): Promise<void> {
  await build({
    entryPoints: ["src/entry/cli.ts"],
    outfile,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    // Prefer a package's ES module build: UMD builds (jsonc-parser's) require() their own files
    // at run time, which a bundle cannot serve. The CDK's Lambda bundling does the same for ESM.
    mainFields: ["module", "main"],
    sourcemap: true,
    // Some CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: "warning",
    ...AGENT_SCRIPTS_BUNDLING,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildCli();
