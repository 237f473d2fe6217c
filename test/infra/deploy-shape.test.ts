import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { EXISTING_RESOURCES, synthBrokerApp, type SynthesizedApp } from "./support";

/** How the app deploys: the account logging role, both URLs, limits, what outlives the stack. */

let defaults: SynthesizedApp;
let broker: Template;

beforeAll(() => {
  defaults = synthBrokerApp();
  broker = Template.fromStack(defaults.stacks.broker);
});

const LOG_ROLE = "arn:aws:iam::111122223333:role/ApiGatewayLogs";

describe("the account's API Gateway logging role", () => {
  it("is created, set for the account and retained when none is given", () => {
    const roles = broker.findResources("AWS::IAM::Role", {
      Properties: {
        AssumeRolePolicyDocument: {
          Statement: [Match.objectLike({ Principal: { Service: "apigateway.amazonaws.com" } })],
        },
      },
    });
    const [id, role] = Object.entries(roles)[0]!;
    expect(Object.keys(roles)).toHaveLength(1);
    expect(role.DeletionPolicy).toBe("Retain");
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain(
      "AmazonAPIGatewayPushToCloudWatchLogs",
    );
    broker.hasResourceProperties("AWS::ApiGateway::Account", {
      CloudWatchRoleArn: { "Fn::GetAtt": [id, "Arn"] },
    });
  });

  it("is the given role when CloudwatchLogRoleArn names one, and nothing is created", () => {
    const t = Template.fromStack(synthBrokerApp({ CloudwatchLogRoleArn: LOG_ROLE }).stacks.broker);
    t.hasResourceProperties("AWS::ApiGateway::Account", { CloudWatchRoleArn: LOG_ROLE });
    expect(JSON.stringify(t.findResources("AWS::IAM::Role"))).not.toContain("apigateway.amazonaws.com");
  });

  it("is in place before the stage, whose logging needs it", () => {
    const [accountId] = Object.keys(broker.findResources("AWS::ApiGateway::Account"));
    const stage = Object.values(broker.findResources("AWS::ApiGateway::Stage"))[0]!;
    expect(stage.DependsOn).toContain(accountId);
  });
});

describe("URLs", () => {
  it("outputs the private-DNS URL and the endpoint-alias URL", () => {
    const outputs = broker.findOutputs("*");
    const flat = (id: string) => JSON.stringify(outputs[id]!.Value);
    expect(flat("InvokeUrl")).toMatch(/"https:\/\/",\{"Ref":"BrokerApi[0-9A-F]+"\},"\.execute-api\./);
    expect(flat("EndpointInvokeUrl")).toMatch(
      /"https:\/\/",\{"Ref":"BrokerApi[0-9A-F]+"\},"-",\{"Fn::ImportValue"/,
    );
    expect(flat("EndpointInvokeUrl")).toContain(".execute-api.");
  });

  it("outputs one alias URL per endpoint, each with its id", () => {
    const t = Template.fromStack(
      synthBrokerApp({
        ...EXISTING_RESOURCES,
        VpcEndpointForApiGateway: "vpce-0a1b2c3d4e5f60718,vpce-11112222",
      }).stacks.broker,
    );
    const outputs = t.findOutputs("*");
    expect(JSON.stringify(outputs.EndpointInvokeUrl!.Value)).toContain(
      "-vpce-0a1b2c3d4e5f60718.execute-api.",
    );
    expect(JSON.stringify(outputs.EndpointInvokeUrl2!.Value)).toContain("-vpce-11112222.execute-api.");
    const env = Object.values(t.findResources("AWS::Lambda::Function"))[0]!.Properties.Environment.Variables;
    expect(env.BROKER_VPC_ENDPOINT_FOR_API_GATEWAY).toBe("vpce-0a1b2c3d4e5f60718,vpce-11112222");
  });

  it("deploys the endpoint with private DNS off when asked to", () => {
    const endpoint = Template.fromStack(synthBrokerApp({ PrivateDnsEnabled: "false" }).stacks.endpoint!);
    endpoint.hasResourceProperties("AWS::EC2::VPCEndpoint", { PrivateDnsEnabled: false });
  });
});

describe("what limits a caller", () => {
  it("reserves 100 concurrent executions and throttles the stage at 50/s, burst 100, by default", () => {
    broker.hasResourceProperties("AWS::Lambda::Function", { ReservedConcurrentExecutions: 100 });
    broker.hasResourceProperties("AWS::ApiGateway::Stage", {
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })],
    });
  });

  it("takes both from settings, the burst being the reserved concurrency; 0 reserves nothing", () => {
    const set = Template.fromStack(
      synthBrokerApp({ ReservedConcurrency: "20", ThrottlingRateLimit: "5" }).stacks.broker,
    );
    set.hasResourceProperties("AWS::Lambda::Function", { ReservedConcurrentExecutions: 20 });
    set.hasResourceProperties("AWS::ApiGateway::Stage", {
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 20 })],
    });
    const none = Template.fromStack(synthBrokerApp({ ReservedConcurrency: "0" }).stacks.broker);
    none.hasResourceProperties("AWS::Lambda::Function", { ReservedConcurrentExecutions: Match.absent() });
    // Nothing reserved: the burst is the rate, which an account with a small quota sets low.
    none.hasResourceProperties("AWS::ApiGateway::Stage", {
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 50 })],
    });
  });
});

describe("what outlives the stack", () => {
  it("retains the node role: registered nodes keep assuming it", () => {
    const roles = broker.findResources("AWS::IAM::Role", {
      Properties: {
        AssumeRolePolicyDocument: {
          Statement: [Match.objectLike({ Principal: { Service: "ssm.amazonaws.com" } })],
        },
      },
    });
    expect(Object.values(roles)).toHaveLength(1);
    expect(Object.values(roles)[0]!.DeletionPolicy).toBe("Retain");
    expect(Object.values(roles)[0]!.UpdateReplacePolicy).toBe("Retain");
  });

  it("encrypts both log groups with a retained key of the stack that only CloudWatch Logs may use", () => {
    const keys = broker.findResources("AWS::KMS::Key");
    expect(Object.keys(keys)).toHaveLength(1);
    const [keyId, key] = Object.entries(keys)[0]!;
    expect(key.DeletionPolicy).toBe("Retain");
    expect(key.Properties.EnableKeyRotation).toBe(true);
    broker.allResourcesProperties("AWS::Logs::LogGroup", { KmsKeyId: { "Fn::GetAtt": [keyId, "Arn"] } });
    const statements = key.Properties.KeyPolicy.Statement as { Sid?: string; Condition?: unknown }[];
    const logs = statements.find((s) => s.Sid === "AllowCloudWatchLogsForThisAccountsLogGroups")!;
    expect(JSON.stringify(logs.Condition)).toContain("kms:EncryptionContext:aws:logs:arn");
  });

  it("denies grants on both keys except to AWS services acting for AWS resources", () => {
    const codesKey = Template.fromStack(defaults.stacks.key!);
    for (const t of [broker, codesKey]) {
      t.hasResourceProperties("AWS::KMS::Key", {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Deny",
              Action: "kms:CreateGrant",
              Principal: { AWS: "*" },
              Condition: {
                BoolIfExists: { "kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false" },
              },
            }),
          ]),
        },
      });
    }
  });
});
