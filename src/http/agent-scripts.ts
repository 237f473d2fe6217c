import { readFileSync } from "node:fs";
import type { InstallScriptTemplates } from "./install-scripts";

/**
 * The bootstrap scripts the broker serves (agent/install.sh, install.ps1, install-eks.sh), as
 * texts with their placeholders unfilled. No copy of them is kept in git: in the bundles
 * (`npm run build`, the CDK's Lambda bundling) esbuild embeds them at build time — its `inject`
 * (agent-scripts.bundled.ts) defines __BROKER_AGENT_SCRIPTS__ through the text loader, both set in
 * scripts/bundling.ts. Run from source (tsx, vitest) nothing is injected and the files are read.
 */
declare const __BROKER_AGENT_SCRIPTS__: InstallScriptTemplates | undefined;

export const AGENT_SCRIPT_FILES = { sh: "install.sh", ps1: "install.ps1", eks: "install-eks.sh" } as const;

export function agentScripts(): InstallScriptTemplates {
  if (typeof __BROKER_AGENT_SCRIPTS__ === "object") return __BROKER_AGENT_SCRIPTS__;
  const read = (name: string) => readFileSync(new URL(`../../agent/${name}`, import.meta.url), "utf8");
  return {
    sh: read(AGENT_SCRIPT_FILES.sh),
    ps1: read(AGENT_SCRIPT_FILES.ps1),
    eks: read(AGENT_SCRIPT_FILES.eks),
  };
}
