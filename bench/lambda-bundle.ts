/**
 * Builds a Lambda bundle with the options the CDK app gives NodejsFunction
 * (infra/constructs/broker-function.ts: minified CJS for node24, ESM builds of dependencies
 * preferred, SDK bundled, the agent scripts embedded), so what the benchmark loads is what `npm run package` ships.
 */
import { build } from "esbuild";
import { AGENT_SCRIPTS_BUNDLING } from "../scripts/bundling";

export async function buildLambdaBundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ["module", "main"],
    ...AGENT_SCRIPTS_BUNDLING,
    logLevel: "error",
  });
}
