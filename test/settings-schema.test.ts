import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { Node } from "constructs";
import { describe, expect, it } from "vitest";
import { CHECKED_CONTEXT_KEYS, CONTEXT_KEYS, settingsFromContext } from "../infra/config/settings";
import { buildReleaseApp } from "../infra/release";
import { documentedRows, renderSettings } from "../scripts/settings-doc";
import { poolConfigSchema } from "../src/core/pool-config";
import { BROKER_VARIABLES, loadSettings } from "../src/settings";
import {
  RETIRED,
  SETTINGS,
  contextKey,
  envName,
  namesOn,
  terraformName,
  wordsOf,
  type Setting,
} from "../src/settings-schema";

/**
 * Every surface's names come from src/settings-schema.ts: the environment src/settings.ts accepts,
 * the CDK context keys infra/ reads, the CloudFormation release's parameters, the Terraform
 * module's variables and docs/configuration.md. A setting added, renamed or re-ranged on one
 * surface and not in the schema fails here.
 */

const root = join(import.meta.dirname, "..");
const read = (...path: string[]) => readFileSync(join(root, ...path), "utf8");
const sorted = (names: Iterable<string>) => [...names].sort();
const numeric = (s: Setting) => s.type === "integer" || s.type === "number";
const on = (surface: Setting["on"][number]) => SETTINGS.filter((s) => s.on.includes(surface));

describe("the schema", () => {
  it("derives each surface's name by one rule", () => {
    expect(wordsOf("AllowedIPRange")).toEqual(["Allowed", "IP", "Range"]);
    expect(envName("KmsKeyId")).toBe("BROKER_KMS_KEY_ID");
    expect(terraformName("FunctionMemoryMB")).toBe("function_memory_mb");
    expect(terraformName("VpcIdForApiGateway")).toBe("vpc_id_for_api_gateway");
    expect(contextKey("KmsKeyId")).toBe("KmsKeyId");
  });

  it("holds each setting once, each key PascalCase words, on at least one surface", () => {
    const keys = SETTINGS.map((s) => s.key);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
    for (const s of SETTINGS) {
      expect(wordsOf(s.key).join(""), s.key).toBe(s.key);
      expect(s.on.length, s.key).toBeGreaterThan(0);
      if (numeric(s))
        expect(
          [s.min, s.max, s.default].every((v) => typeof v === "number"),
          s.key,
        ).toBe(true);
    }
  });

  it("names no setting it has retired, on any surface", () => {
    const current = new Set([...namesOn("env"), ...namesOn("context"), ...namesOn("cfn"), ...namesOn("tf")]);
    expect(Object.keys(RETIRED).filter((name) => current.has(name))).toEqual([]);
  });

  it("uses no milliseconds: durations an operator sets are in seconds (or AWS's days)", () => {
    const names = SETTINGS.flatMap((s) => [s.key, s.unit ?? ""]);
    expect(names.filter((n) => /Ms$|millisecond/i.test(n))).toEqual([]);
  });
});

describe("the environment (src/settings.ts)", () => {
  const base = { AWS_REGION: "eu-west-1", BROKER_TABLE_NAME: "pools", BROKER_DEFAULT_IAM_ROLE: "NodeRole" };

  it("accepts the schema's variables, no more, no less", () => {
    expect(sorted(BROKER_VARIABLES)).toEqual(sorted(namesOn("env")));
  });

  it.each(on("env").filter(numeric))("takes $key's range from the schema", (s) => {
    const name = envName(s.key);
    expect(() => loadSettings({ ...base, [name]: String(s.min) })).not.toThrow();
    expect(() => loadSettings({ ...base, [name]: String(s.max) })).not.toThrow();
    expect(() => loadSettings({ ...base, [name]: String(s.max! + 1) })).toThrow(name);
    expect(() => loadSettings({ ...base, [name]: String(s.min! - 1) })).toThrow(name);
  });
});

describe("CDK context (infra/config/settings.ts)", () => {
  /** A construct node holding just this context. */
  const nodeWith = (context: Record<string, unknown>) =>
    ({ tryGetContext: (key: string) => context[key] }) as unknown as Node;
  const network = { VpcEndpointForApiGateway: "vpce-0a1b2c3d4e5f60718" };

  it("reads and checks the schema's keys, no more, no less", () => {
    expect(sorted(CONTEXT_KEYS)).toEqual(sorted(namesOn("context")));
    expect(sorted(CHECKED_CONTEXT_KEYS)).toEqual(sorted(namesOn("context")));
  });

  it("applies the schema's defaults", () => {
    const s = settingsFromContext(nodeWith(network)) as unknown as Record<string, unknown>;
    for (const setting of on("context").filter((x) => x.default !== undefined)) {
      expect(s[setting.key], setting.key).toBe(setting.default);
    }
  });

  it.each(on("context").filter(numeric))("takes $key's range from the schema", (s) => {
    const at = (value: number) => () => settingsFromContext(nodeWith({ ...network, [s.key]: String(value) }));
    expect(at(s.min!)).not.toThrow();
    expect(at(s.max!)).not.toThrow();
    expect(at(s.max! + 1)).toThrow(s.key);
  });
});

describe("CloudFormation parameters (infra/release.ts)", () => {
  const app = new App();
  const stacks = buildReleaseApp(app, { broker: "exports.handler = 1", janitor: "exports.handler = 1" });
  type Parameter = {
    Type: string;
    Default?: unknown;
    MinValue?: number;
    MaxValue?: number;
    AllowedValues?: string[];
    Description: string;
  };
  const parameters: Record<string, Parameter> = Object.assign(
    {},
    ...Object.values(stacks).map((stack) => Template.fromStack(stack).toJSON().Parameters ?? {}),
  );

  it("are the schema's, no more, no less", () => {
    expect(sorted(Object.keys(parameters))).toEqual(sorted(namesOn("cfn")));
  });

  it.each(on("cfn"))("$key takes its range, values, default and description from the schema", (s) => {
    const p = parameters[contextKey(s.key)]!;
    if (numeric(s))
      expect(p).toMatchObject({ Type: "Number", MinValue: s.min, MaxValue: s.max, Default: s.default });
    if (s.type === "enum") expect(p.AllowedValues).toEqual(s.values!.map(String));
    if (s.default !== undefined && !numeric(s)) expect(p.Default).toBe(String(s.default));
    const plain = s.description.replace(/\[([^\]]+)\]\([^)]+\)/g, "$1").replace(/`/g, "");
    expect(p.Description.startsWith(plain), p.Description).toBe(true);
  });
});

describe("Terraform variables (deploy/terraform/variables.tf)", () => {
  const text = read("deploy", "terraform", "variables.tf");
  /** Each variable's block, by name. */
  const blocks = new Map(
    [...text.matchAll(/^variable "([a-z0-9_]+)" \{\n([\s\S]*?)\n\}$/gm)].map((m) => [m[1]!, m[2]!]),
  );

  it("are the schema's, no more, no less", () => {
    expect(sorted(blocks.keys())).toEqual(sorted(namesOn("tf")));
  });

  it.each(on("tf").filter((s) => s.default !== undefined))("$key has the schema's default", (s) => {
    const block = blocks.get(terraformName(s.key))!;
    const written = typeof s.default === "string" ? JSON.stringify(s.default) : String(s.default);
    expect(block).toMatch(new RegExp(`^\\s+default\\s+= ${written.replace(/[.]/g, "\\.")}$`, "m"));
  });

  it.each(on("tf").filter(numeric))("$key checks the schema's range", (s) => {
    const name = terraformName(s.key);
    const block = blocks.get(name)!;
    expect(block).toContain(`var.${name} >= ${s.min}`);
    expect(block).toContain(`var.${name} <= ${s.max}`);
  });
});

describe("docs", () => {
  const page = read("docs", "configuration.md");

  it("docs/configuration.md lists every setting once, as the schema says (npx tsx scripts/settings-doc.ts)", () => {
    expect(documentedRows(page)).toEqual(documentedRows(renderSettings()));
  });

  it("no page names a BROKER_* variable the broker would refuse", () => {
    const pages = [
      "README.md",
      "CONTRIBUTING.md",
      ...readdirSync(join(root, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => `docs/${f}`),
      "deploy/terraform/README.md",
      "deploy/broker.env.example",
    ];
    // The install scripts' own variables and exit-code names (docs/onboarding.md).
    const scripts = [
      "BROKER_URL",
      "BROKER_POOL",
      "BROKER_UNREACHABLE",
      "BROKER_REJECTED",
      "BROKER_BAD_ANSWER",
    ];
    const known = new Set([...BROKER_VARIABLES, ...scripts]);
    const unknown = pages.flatMap((p) =>
      [...new Set(read(p).match(/\bBROKER_[A-Z_]*[A-Z]\b/g))]
        .filter((name) => !known.has(name))
        .map((name) => `${p}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });
});

/**
 * The knobs an operator can turn: the schema's settings (one knob however many surfaces name it),
 * the pool keys, and the bootstrap scripts' flags (one knob however many scripts take it; the
 * PowerShell script's -MaxWait is install.sh's --max-wait).
 */
describe("the knob count", () => {
  const poolKeys = () => {
    const shape = poolConfigSchema.shape;
    const hygiene = (shape.hygiene as unknown as { unwrap(): { shape: object } }).unwrap().shape;
    return [
      ...Object.keys(shape).filter((k) => k !== "hygiene"),
      ...Object.keys(hygiene).map((k) => `hygiene.${k}`),
    ];
  };
  const scriptFlags = () => {
    const shell = ["install.sh", "install-eks.sh"].flatMap((f) =>
      [...read("agent", f).matchAll(/^ {2}--([a-z0-9-]+) /gm)].map((m) => m[1]!),
    );
    const params = read("agent", "install.ps1").match(/^param\(([\s\S]*?)^\)/m)![1]!;
    const powershell = [...params.matchAll(/^\s*\[\w+\]\$(\w+)/gm)]
      .map((m) => m[1]!.replace(/(?<=[a-z0-9])([A-Z])/g, "-$1").toLowerCase())
      .filter((flag) => flag !== "help");
    return new Set([...shell, ...powershell]);
  };

  it("is at most 70", () => {
    const pools = poolKeys();
    const flags = scriptFlags();
    expect(pools).toContain("registrationLimit");
    expect(flags).toContain("max-wait");
    const count = SETTINGS.length + pools.length + flags.size;
    const breakdown = `${SETTINGS.length} settings + ${pools.length} pool keys + ${flags.size} script flags`;
    expect(count, breakdown).toBeLessThanOrEqual(70);
  });
});
