import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT, VALIDATION_REPORT_FILE } from "aws-cdk-lib/cx-api";
import { buildBrokerApp, type BrokerAppStacks } from "../../infra/broker-app";

const repoRoot = join(import.meta.dirname, "..", "..");

/** The committed cdk.json context (feature flags and example settings): tests synth what users synth. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(repoRoot, "cdk.json"), "utf8")).context;
}

export interface Finding {
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
  readonly description: string;
}

export interface SynthesizedApp {
  readonly app: App;
  readonly stacks: BrokerAppStacks;
  readonly outdir: string;
  /** Every unacknowledged violation (errors and warnings) of every validation plugin. */
  readonly findings: readonly Finding[];
}

/**
 * Builds the app exactly as `cdk synth` does and collects the policy-validation report instead of
 * letting synth throw, so a test can show every finding at once. Bundling and cfn-guard are
 * skipped unless asked for: only the bundle and policy tests pay for them.
 */
export function synthBrokerApp(
  context: Record<string, unknown> = {},
  options: { bundle?: boolean; cfnValidation?: boolean; guard?: boolean } = {},
): SynthesizedApp {
  const outdir = mkdtempSync(join(tmpdir(), "broker-cdk-"));
  const app = new App({
    outdir,
    // CDK's built-in CloudFormation schema check costs ~15 s per synth: the cdk-nag suite runs it
    // once on the default app, the other suites skip it.
    builtinCloudFormationValidation: options.cfnValidation ?? false,
    context: {
      ...cdkJsonContext(),
      ...context,
      [FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT]: false,
      ...(options.bundle ? {} : { "aws:cdk:bundling-stacks": [] }),
    },
  });
  const stacks = buildBrokerApp(app, { guard: options.guard ?? false });
  const assembly = app.synth();
  return { app, stacks, outdir: assembly.directory, findings: readFindings(assembly.directory) };
}

interface ReportJson {
  pluginReports: {
    pluginName: string;
    violations: {
      ruleName: string;
      description: string;
      severity?: string;
      violatingConstructs: { constructPath?: string }[];
    }[];
  }[];
}

export function readFindings(assemblyDir: string): Finding[] {
  let report: ReportJson;
  try {
    report = JSON.parse(readFileSync(join(assemblyDir, VALIDATION_REPORT_FILE), "utf8"));
  } catch {
    return []; // no report file: no plugin reported anything
  }
  return report.pluginReports.flatMap((p) =>
    p.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({
        rule: v.ruleName,
        severity: v.severity ?? "unknown",
        path: c.constructPath ?? "?",
        description: v.description,
      })),
    ),
  );
}

/** Context for a deployment that reuses an existing endpoint and key (steps 1 and 2 skipped). */
export const EXISTING_RESOURCES = {
  VpcEndpointForApiGateway: "vpce-0a1b2c3d4e5f60718",
  KmsKeyId: "1234abcd-12ab-34cd-56ef-1234567890ab",
};

/** Every `Validations.of(x).acknowledge(...)` in the tree, as id → reason. */
export function acknowledgments(app: App): { path: string; id: string; reason: string }[] {
  return app.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .map(([id, reason]) => ({ path: c.node.path, id, reason })),
  );
}
