/**
 * esbuild's `inject` file for the bundles (scripts/bundling.ts): the text loader turns each import
 * into the script's text, and every reference to __BROKER_AGENT_SCRIPTS__ (agent-scripts.ts)
 * becomes this object. Never imported by the source itself.
 */
import eks from "../../agent/install-eks.sh";
import ps1 from "../../agent/install.ps1";
import sh from "../../agent/install.sh";

export const __BROKER_AGENT_SCRIPTS__ = { sh, ps1, eks };
