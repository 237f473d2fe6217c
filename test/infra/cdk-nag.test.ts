import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import { AttributeType, Table } from "aws-cdk-lib/aws-dynamodb";
import { FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT } from "aws-cdk-lib/cx-api";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsSolutionsChecks } from "cdk-nag";
import { ControlTowerGuard } from "../../infra/checks/control-tower-guard";
import { describe, expect, it } from "vitest";
import { EXISTING_RESOURCES, acknowledgments, readFindings, synthBrokerApp } from "./support";

/**
 * cdk-nag's AwsSolutions pack (and CDK's built-in CloudFormation checks) over every shape the app
 * can take: zero unacknowledged findings, warnings included, and every acknowledgment explained.
 */

const CONFIGURATIONS: Record<string, Record<string, unknown>> = {
  "all three steps, defaults": {},
  "existing endpoint and key, every option on": {
    ...EXISTING_RESOURCES,
    LogRetentionDays: "30",
    ReservedConcurrency: "0",
    CloudwatchLogRoleArn: "arn:aws:iam::111122223333:role/ApiGatewayLogs",
    ApiAllowedSourceIpRanges: "10.20.0.0/16",
    DefaultIamRole: "ExistingNodeRole",
    TableDeletionProtection: "false",
    Pools: JSON.stringify({
      linux: { tags: { Team: "ops" }, hygiene: { nameTag: true, deregisterDuplicatesAfterDays: 7 } },
      edge: { iamRole: "EdgeNodeRole" },
    }),
  },
  "endpoint pinned to one API, private DNS off": {
    VpcEndpointAllowedApiIds: "a1b2c3d4e5",
    DeploymentName: "blue",
    PrivateDnsEnabled: "false",
  },
};

describe("cdk-nag AwsSolutions and cfn-guard with the Control Tower rules", () => {
  for (const [name, context] of Object.entries(CONFIGURATIONS)) {
    it(`reports nothing unacknowledged: ${name}`, () => {
      // The CloudFormation schema check is slow; the default shape pays for it once.
      const { findings } = synthBrokerApp(context, {
        cfnValidation: Object.keys(context).length === 0,
        guard: true,
      });
      expect(findings).toEqual([]);
    });
  }

  it("does catch a violation (the collector is not blind)", () => {
    const app = new App({ context: { [FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT]: false } });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new Stack(app, "Bad");
    new Table(stack, "NoPitr", { partitionKey: { name: "pk", type: AttributeType.STRING } });
    const findings = readFindings(app.synth().directory);
    expect(findings.map((f) => f.rule)).toContain("AwsSolutions-DDB3");
  });

  it("runs cfn-guard: it catches a violation, and an acknowledgment covers only its own resource", () => {
    const app = new App({ context: { [FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT]: false } });
    Validations.of(app).addPlugins(new ControlTowerGuard());
    const stack = new Stack(app, "Bad");
    new LogGroup(stack, "Short", { retention: RetentionDays.ONE_WEEK });
    const accepted = new LogGroup(stack, "Accepted", { retention: RetentionDays.ONE_WEEK });
    Validations.of(accepted).acknowledge({
      id: "cloudwatch_log_group_retention_period_check",
      reason: "a test of the acknowledgment filter, long enough to pass the reason check",
    });
    const findings = readFindings(app.synth().directory).filter(
      (f) => f.rule === "cloudwatch_log_group_retention_period_check",
    );
    expect(findings.map((f) => f.path)).toEqual(["Bad/Short/Resource"]);
  });

  it("explains every acknowledgment, and docs/security.md lists each one", () => {
    const acks = [
      ...acknowledgments(synthBrokerApp(CONFIGURATIONS["existing endpoint and key, every option on"]!).app),
      ...acknowledgments(synthBrokerApp({}).app),
    ];
    expect(acks.length).toBeGreaterThan(0);
    const docs = readFileSync(join(import.meta.dirname, "..", "..", "docs", "security.md"), "utf8");
    for (const a of acks) {
      expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThan(40);
      // Findings carrying deployment-specific text (a parameter path) are listed by their rule prefix.
      // CDK records ids without a plugin namespace under "Annotation::"; cdk-nag matches either form.
      const documented = a.id
        .replace(/^Annotation::(?=AwsSolutions-|[a-z0-9_]+$)/, "")
        .replace(/\[Resource::arn:.*:parameter\/.*\]$/, "[Resource::…:parameter/<prefix>/*]");
      expect(docs, `${a.id} missing from docs/security.md`).toContain(documented);
    }
  });
});
