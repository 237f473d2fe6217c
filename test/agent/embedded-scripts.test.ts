import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  GENERATED,
  SOURCES,
  generateAgentScriptsModule,
  pathsUnder,
  templateLiteralBody,
} from "../../scripts/embed-agent-scripts";
import { INSTALL_PS1, INSTALL_SH } from "../../src/http/agent-scripts.generated";
import { installScriptRenderer } from "../../src/http/install-scripts";

const ROOT = join(import.meta.dirname, "..", "..");
const sh = readFileSync(SOURCES.sh, "utf8");
const ps1 = readFileSync(SOURCES.ps1, "utf8");

/** `npm run generate` / the lint check, run as npm runs them, on a checkout at `root`. */
function generator(root: string, ...args: string[]) {
  return spawnSync(
    process.execPath,
    ["--import", "tsx", join(ROOT, "scripts", "embed-agent-scripts.ts"), "--root", root, ...args],
    { encoding: "utf8", cwd: ROOT },
  );
}

function checkoutCopy(): ReturnType<typeof pathsUnder> & { root: string } {
  const root = mkdtempSync(join(tmpdir(), "generate-"));
  const paths = pathsUnder(root);
  mkdirSync(join(root, "agent"));
  mkdirSync(join(root, "src", "http"), { recursive: true });
  cpSync(SOURCES.sh, paths.sh);
  cpSync(SOURCES.ps1, paths.ps1);
  cpSync(GENERATED, paths.generated);
  return { root, ...paths };
}

describe("src/http/agent-scripts.generated.ts", () => {
  it("is up to date with agent/ (run: npm run generate)", () => {
    expect(readFileSync(GENERATED, "utf8")).toBe(generateAgentScriptsModule(sh, ps1));
    expect(INSTALL_SH).toBe(sh);
    expect(INSTALL_PS1).toBe(ps1);
  });

  it("holds the two script texts and nothing else: no import, no code", () => {
    const code = readFileSync(GENERATED, "utf8")
      .replace(/`(?:\\[\s\S]|[^`\\])*`/g, "``")
      .replace(/^\s*(\/\/|\/\*\*).*$/gm, "")
      .trim();
    expect(code).toBe("export const INSTALL_SH: string = ``;\n\nexport const INSTALL_PS1: string = ``;");
  });

  it("keeps one script line per line, so a script change reads the same in the diff", () => {
    const generatedLines = readFileSync(GENERATED, "utf8").split("\n").length;
    expect(generatedLines).toBe(sh.split("\n").length + ps1.split("\n").length + 8);
  });
});

describe("the generator (npm run generate; npm run lint runs --check)", () => {
  it("check passes on this checkout", () => {
    const result = generator(ROOT, "--check");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("check fails, naming the fix, when a script changed after generation; generate fixes it", () => {
    const copy = checkoutCopy();
    writeFileSync(copy.sh, `${sh}# a change\n`);
    const stale = generator(copy.root, "--check");
    expect(stale.status).toBe(1);
    expect(stale.stderr.trim()).toBe(
      "src/http/agent-scripts.generated.ts is stale: agent/ changed since it was generated. " +
        "Run `npm run generate`.",
    );

    const written = generator(copy.root);
    expect(written.status, written.stderr).toBe(0);
    expect(written.stdout.trim()).toBe("wrote src/http/agent-scripts.generated.ts");
    expect(readFileSync(copy.generated, "utf8")).toContain("# a change\n`;");
    expect(generator(copy.root, "--check").status).toBe(0);
  });

  it("refuses a script that lost a placeholder, and writes nothing", () => {
    const copy = checkoutCopy();
    writeFileSync(copy.ps1, ps1.replace("__BROKER_POOL__", "web"));
    const result = generator(copy.root);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      "npm run generate: agent/install.ps1 must contain __BROKER_POOL__ exactly once (found 0)",
    );
    expect(readFileSync(copy.generated, "utf8")).toBe(readFileSync(GENERATED, "utf8"));
  });

  it("round-trips any text through the template literal", () => {
    const read = (body: string) => new Function(`return \`${body}\`;`)() as string;
    for (const tricky of ["`", "${x}", "\\", "\\${", "$${", "\r\n", "\u2028", "\0", "a\\`b"]) {
      expect(read(templateLiteralBody(tricky))).toBe(tricky);
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => read(templateLiteralBody(text)) === text),
      { numRuns: 500 },
    );
  });
});

describe("a rendered install.sh", () => {
  it("runs with the filled-in URL (bash parses it; the URL and pool are accepted)", () => {
    const dir = mkdtempSync(join(tmpdir(), "render-"));
    const file = join(dir, "install.sh");
    const render = installScriptRenderer({ sh: INSTALL_SH, ps1: INSTALL_PS1 });
    writeFileSync(file, render("sh", { brokerUrl: "https://broker.example.com/prod", pool: "web" }));
    writeFileSync(join(dir, "os-release"), 'ID="debian"\nVERSION_ID="12"\n');
    const result = spawnSync("bash", [file, "--dry-run", "--root", dir], {
      env: { PATH: process.env.PATH ?? "", INSTALL_ROOT: "" },
      encoding: "utf8",
    });
    // os-release lives at <root>/etc/os-release: absent here, so the platform check fails (4) after
    // the URL and pool were accepted (a bad value would be exit 2).
    expect(result.status, result.stderr).toBe(4);
    expect(result.stderr).not.toContain("--url");
  });
});
