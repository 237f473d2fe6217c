/**
 * What every bundle of the broker needs beyond plain TypeScript: the bootstrap scripts of agent/
 * embedded at build time (src/http/agent-scripts.ts). Shared by `npm run build` (scripts/build.ts)
 * and the CDK's Lambda bundling (infra/constructs/activation-broker.ts FUNCTION_BUNDLING), which
 * the release bundle (infra/scripts/package.ts) is taken from.
 */
import { fileURLToPath } from "node:url";

export const AGENT_SCRIPTS_BUNDLING: { loader: Record<string, "text">; inject: string[] } = {
  /** The scripts are imported as strings. */
  loader: { ".sh": "text", ".ps1": "text" },
  /** Defines __BROKER_AGENT_SCRIPTS__ from those imports. */
  inject: [fileURLToPath(new URL("../src/http/agent-scripts.bundled.ts", import.meta.url))],
};
