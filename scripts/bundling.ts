/**
 * What every bundle of the broker needs beyond plain TypeScript: the bootstrap scripts of agent/
 * embedded at build time (src/http/agent-scripts.ts). Shared by `npm run build` (scripts/build.ts),
 * the CDK's Lambda bundling (infra/constructs/broker-function.ts FUNCTION_BUNDLING), the release's
 * inline code (infra/scripts/package.ts) and the benchmark's Lambda bundle (bench/lambda-bundle.ts).
 */
import { fileURLToPath } from "node:url";

export const AGENT_SCRIPTS_BUNDLING: { loader: Record<string, "text">; inject: string[] } = {
  /** The scripts are imported as strings. */
  loader: { ".sh": "text", ".ps1": "text" },
  /** Defines __BROKER_AGENT_SCRIPTS__ from those imports. */
  inject: [fileURLToPath(new URL("../src/http/agent-scripts.bundled.ts", import.meta.url))],
};
