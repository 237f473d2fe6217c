import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { BrokerStack } from "../../infra/stacks/broker-stack";
import { EXISTING_RESOURCES, cdkJsonContext, synthBrokerApp } from "./support";

/** Settings come from context, are validated at synth, and fail it with the offending key named. */

describe("settings from context", () => {
  it("skips steps 1 and 2 when an existing endpoint and key are named", () => {
    const { stacks } = synthBrokerApp(EXISTING_RESOURCES);
    expect(stacks.endpoint).toBeUndefined();
    expect(stacks.key).toBeUndefined();
    const env = Object.values(Template.fromStack(stacks.broker).findResources("AWS::Lambda::Function"))[0]!
      .Properties.Environment.Variables;
    expect(JSON.stringify(env.BROKER_KMS_KEY_ID)).toContain(`:key/${EXISTING_RESOURCES.KmsKeyId}`);
  });

  it("reads every setting from -c strings as well as cdk.json values", () => {
    const { stacks } = synthBrokerApp({
      ApiGatewayStageName: "v1",
      ThrottlingRateLimit: "20",
      LogRetentionDays: "30",
      ParameterPrefix: "/codes/blue",
      Pools: '{"linux":{"registrationLimit":10}}',
    });
    const t = Template.fromStack(stacks.broker);
    t.hasResourceProperties("AWS::ApiGateway::Stage", { StageName: "v1" });
    t.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
    const env = Object.values(t.findResources("AWS::Lambda::Function"))[0]!.Properties.Environment.Variables;
    expect(env.BROKER_PARAMETER_PREFIX).toBe("/codes/blue");
    expect(JSON.parse(env.BROKER_POOLS).pools.linux.registrationLimit).toBe(10);
  });

  it("reads pools from a file with the broker's document format", () => {
    const file = join(mkdtempSync(join(tmpdir(), "pools-")), "pools.json");
    writeFileSync(file, JSON.stringify({ pools: { edge: { expirationHours: 12 } } }));
    const { stacks } = synthBrokerApp({ Pools: file });
    const env = Object.values(Template.fromStack(stacks.broker).findResources("AWS::Lambda::Function"))[0]!
      .Properties.Environment.Variables;
    expect(JSON.parse(env.BROKER_POOLS).pools.edge.expirationHours).toBe(12);
  });

  it.each([
    [{ Pools: { linux: { registrationLimit: 5000 } } }, /pools\.linux\.registrationLimit/],
    [{ Pools: { linux: { registrationLimt: 5 } } }, /pools\.linux\.registrationLimt: unknown key/],
    [{ Pools: { "bad name": {} } }, /pools\.bad name/],
    [{ Pools: { linux: { tags: { "activation-broker:pool": "x" } } } }, /pools\.linux\.tags/],
    [
      { Pools: { linux: { expirationHours: 1, safetyMarginMinutes: 90 } } },
      /pools\.linux\.safetyMarginMinutes/,
    ],
    [{ Pools: "{not json" }, /Pools/],
    [{ AllowedIPRange: "10.0.0.0/33" }, /AllowedIPRange/],
    [{ VpcIdForApiGateway: "vpc-nothex" }, /VpcIdForApiGateway/],
    [{ ApiGatewayStageName: "prod stage" }, /ApiGatewayStageName/],
    [{ KmsKeyId: "alias/my-key" }, /KmsKeyId/],
    [{ LogRetentionDays: "42" }, /LogRetentionDays/],
    [{ ParameterPrefix: "codes/" }, /ParameterPrefix/],
    [{ LeaseSeconds: "45" }, /LeaseSeconds is no longer a setting/],
    [{ EnableXRay: "false" }, /EnableXRay is no longer a setting: removed/],
    [{ NodeRoleName: "Nodes" }, /NodeRoleName is no longer a setting: renamed DefaultIamRole/],
    [{ Pools: "/nonexistent/pools.json" }, /Pools: cannot read/],
    [{ PoolsFile: "pools.json" }, /PoolsFile is no longer a setting: now Pools/],
  ])("fails synth naming the field: %j", (context, message) => {
    expect(() => synthBrokerApp(context)).toThrow(message);
  });

  it("requires the VPC, subnets and allowed range when no endpoint is given", () => {
    const ctx = cdkJsonContext();
    const unset = {
      ...ctx,
      VpcIdForApiGateway: undefined,
      SubnetsForVpcEndpoint: undefined,
      AllowedIPRange: undefined,
    };
    expect(() => synthBrokerApp(unset)).toThrow(
      /VpcIdForApiGateway: required.*SubnetsForVpcEndpoint: required.*AllowedIPRange: required/,
    );
  });
});

describe("two deployments in one account", () => {
  it("share no physical name", () => {
    const app = new App({
      builtinCloudFormationValidation: false,
      context: { ...cdkJsonContext(), "aws:cdk:bundling-stacks": [] },
    });
    const stacks = ["Blue", "Green"].map(
      (n) =>
        new BrokerStack(app, `ActivationBroker-${n}-Api`, {
          vpcEndpointIds: ["vpce-0a1b2c3d4e5f60718"],
          kmsKey: "1234abcd-12ab-34cd-56ef-1234567890ab",
        }),
    );
    const templates = stacks.map((s) => Template.fromStack(s).toJSON());
    // Account-wide identifiers. An AWS::IAM::Policy's PolicyName is unique only within the (generated)
    // roles it is attached to, and a FunctionName on a Permission is a reference, so neither counts.
    const NAME_PROPS =
      /^(TableName|RoleName|FunctionName|LogGroupName|ManagedPolicyName|GroupName|AliasName|Name|KeyName)$/;
    const names = templates.map((t) => {
      const found: string[] = [];
      for (const r of Object.values(
        t.Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>,
      )) {
        if (r.Type === "AWS::Lambda::Permission") continue;
        for (const [prop, value] of Object.entries(r.Properties ?? {})) {
          if (NAME_PROPS.test(prop)) found.push(`${r.Type}.${prop}=${JSON.stringify(value)}`);
        }
      }
      return found;
    });
    const [blue, green] = names;
    // The only name set is the API's display name, derived from the stack name.
    expect(blue).toEqual(['AWS::ApiGateway::RestApi.Name="ActivationBroker-Blue-Api-broker"']);
    expect(blue!.filter((n) => green!.includes(n))).toEqual([]);
    const prefixes = templates.map(
      (t) =>
        Object.values(
          t.Resources as Record<
            string,
            { Type: string; Properties: { Environment: { Variables: Record<string, string> } } }
          >,
        ).find((r) => r.Type === "AWS::Lambda::Function")!.Properties.Environment.Variables
          .BROKER_PARAMETER_PREFIX,
    );
    expect(new Set(prefixes).size).toBe(2);
  });
});
