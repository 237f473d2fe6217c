/**
 * Builds a Lambda bundle with the options the CDK app gives NodejsFunction
 * (infra/constructs/activation-broker.ts: minified CJS for node22, ESM builds of dependencies
 * preferred, SDK bundled), so what the benchmark loads is what `npm run package` ships.
 */
import { build } from "esbuild";

export async function buildLambdaBundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ["module", "main"],
    logLevel: "error",
  });
}
