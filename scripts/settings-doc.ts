/**
 * docs/configuration.md's settings tables, rendered from src/settings-schema.ts: one row per
 * setting, naming it on every surface that has it. `npx tsx scripts/settings-doc.ts` rewrites
 * the tables between the markers (then `npx prettier --write docs/configuration.md`);
 * test/settings-schema.test.ts fails when the page and the schema differ.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SETTINGS, contextKey, envName, terraformName, type Setting } from "../src/settings-schema";

export const DOC = join(import.meta.dirname, "..", "docs", "configuration.md");
const BEGIN = "<!-- settings: generated from src/settings-schema.ts by scripts/settings-doc.ts -->";
const END = "<!-- end of settings -->";

const code = (text: string) => `\`${text}\``;
const none = "—";

function defaultOf(s: Setting): string {
  const value = s.defaultText ?? (s.default === undefined ? none : code(String(s.default)));
  const range =
    s.min !== undefined && s.max !== undefined && s.type !== "string"
      ? ` (${s.min}–${s.max}${s.unit ? ` ${s.unit}` : ""})`
      : s.unit && s.type !== "enum"
        ? ` (${s.unit})`
        : "";
  return `${value}${range}`;
}

function meaningOf(s: Setting): string {
  const values =
    s.type === "enum" && s.unit === undefined ? `: ${s.values!.map((v) => code(String(v))).join(", ")}` : "";
  return `${s.description}${values}`;
}

/** The rows of both tables as cells, the way the test reads them back from the page. */
export function settingsRows(): { broker: string[][]; deployment: string[][] } {
  const named = (s: Setting, surface: Setting["on"][number], name: (key: string) => string) =>
    s.on.includes(surface) ? code(name(s.key)) : none;
  const row = (s: Setting) => [
    named(s, "env", envName),
    named(s, "context", contextKey),
    named(s, "cfn", contextKey),
    named(s, "tf", terraformName),
    defaultOf(s),
    meaningOf(s),
  ];
  return {
    broker: SETTINGS.filter((s) => s.on.includes("env")).map(row),
    deployment: SETTINGS.filter((s) => !s.on.includes("env")).map((s) => row(s).slice(1)),
  };
}

const table = (header: string[], rows: string[][]) =>
  [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");

export function renderSettings(): string {
  const { broker, deployment } = settingsRows();
  const surfaces = ["CDK context", "CloudFormation", "Terraform"];
  return [
    BEGIN,
    "",
    "### The broker",
    "",
    "What the broker process reads, whether the Lambda, `activation-broker serve` or `npm start` runs it.",
    "On AWS the deploy tooling sets them; a setting that also has a deployment name is set through it.",
    "",
    table(["environment", ...surfaces, "default", "meaning"], broker),
    "",
    "### The deployment",
    "",
    "What the CDK app, the CloudFormation templates and the Terraform module ask for ([deploy.md](deploy.md)).",
    "",
    table([...surfaces, "default", "meaning"], deployment),
    "",
    END,
  ].join("\n");
}

/** The cells of every table row between the markers, trimmed (Prettier pads them). */
export function documentedRows(page: string): string[][] {
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) return [];
  return page
    .slice(start, end)
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}

if (process.argv[1] === import.meta.filename) {
  const page = readFileSync(DOC, "utf8");
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC} has no settings markers`);
  writeFileSync(DOC, page.slice(0, start) + renderSettings() + page.slice(end + END.length));
}
