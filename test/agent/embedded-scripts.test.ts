/**
 * No copy of the scripts is kept in git: the bundles embed agent/ at build time (esbuild's text
 * loader and inject, scripts/bundling.ts), and the source reads the files. Both are checked here:
 * a bundle of the module, moved where no agent/ directory exists, still returns the exact texts.
 */
import { build } from "esbuild";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { AGENT_SCRIPTS_BUNDLING } from "../../scripts/bundling";
import { AGENT_SCRIPT_FILES, agentScripts } from "../../src/http/agent-scripts";
import { installScriptRenderer } from "../../src/http/install-scripts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const onDisk = Object.fromEntries(
  Object.entries(AGENT_SCRIPT_FILES).map(([kind, file]) => [
    kind,
    readFileSync(join(repoRoot, "agent", file), "utf8"),
  ]),
);

async function bundle(format: "cjs" | "esm"): Promise<{ file: string; warnings: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "agent-scripts-bundle-"));
  const entry = join(dir, "entry.ts");
  writeFileSync(
    entry,
    `export { agentScripts } from ${JSON.stringify(join(repoRoot, "src/http/agent-scripts.ts"))};\n`,
  );
  const file = join(dir, format === "cjs" ? "out.cjs" : "out.mjs");
  const result = await build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    platform: "node",
    format,
    logLevel: "silent",
    ...AGENT_SCRIPTS_BUNDLING,
  });
  return { file, warnings: result.warnings.map((w) => w.text) };
}

describe("the served scripts", () => {
  it("are read from agent/ when running from source", () => {
    expect(agentScripts()).toEqual(onDisk);
  });

  it.each(["cjs", "esm"] as const)("are embedded in a %s bundle, which reads no file", async (format) => {
    const { file } = await bundle(format);
    const loaded = (
      format === "cjs" ? createRequire(import.meta.url)(file) : await import(pathToFileURL(file).href)
    ) as { agentScripts: typeof agentScripts };
    expect(loaded.agentScripts()).toEqual(onDisk);
  });

  it("leave one import.meta in the Lambda's CJS bundle: the dead source fallback, whose warning the CDK silences", async () => {
    const result = await build({
      entryPoints: [join(repoRoot, "src/entry/lambda.ts")],
      bundle: true,
      write: false,
      platform: "node",
      format: "cjs",
      mainFields: ["module", "main"],
      logLevel: "silent",
      ...AGENT_SCRIPTS_BUNDLING,
    });
    expect(result.warnings.map((w) => `${w.id} ${w.location?.file}`)).toEqual([
      "empty-import-meta src/http/agent-scripts.ts",
    ]);
  });

  it("each hold the broker URL and pool placeholders once, and render", () => {
    const render = installScriptRenderer(agentScripts());
    for (const kind of ["sh", "ps1", "eks"] as const) {
      const text = render(kind, { brokerUrl: "https://broker.example.com/prod", pool: "web" });
      expect(text).toContain("https://broker.example.com/prod");
      expect(text).not.toMatch(/__BROKER_(URL|POOL)__/);
    }
  });
});
