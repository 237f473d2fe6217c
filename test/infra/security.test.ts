import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { BrokerStack } from "../../infra/stacks/broker-stack";
import { cdkJsonContext, synthBrokerApp, type SynthesizedApp } from "./support";

/**
 * Every security property in docs/security.md, asserted on the synthesized templates by shape — never by
 * hashed logical id. One app is synthesized per configuration and shared by its assertions.
 */

const POOLS = {
  linux: { registrationLimit: 500, tags: { Team: "ops" } },
  windows: { iamRole: "WindowsNodeRole", expirationHours: 48 },
};

let deployed: SynthesizedApp;
let endpoint: Template;
let key: Template;
let broker: Template;

beforeAll(() => {
  deployed = synthBrokerApp({
    Pools: POOLS,
    ApiAllowedSourceIpRanges: "10.20.0.0/16,10.30.0.0/16",
    AllowedIPRange: "10.0.0.0/8",
  });
  endpoint = Template.fromStack(deployed.stacks.endpoint!);
  key = Template.fromStack(deployed.stacks.key!);
  broker = Template.fromStack(deployed.stacks.broker);
});

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Sid?: string;
}

/**
 * All statements of every identity policy (inline policies and roles' Policies) in a template;
 * with `policy`, only those of the AWS::IAM::Policy resources whose logical id contains it.
 */
function identityStatements(t: Template, policy?: string): Statement[] {
  const fromPolicies = Object.entries(t.findResources("AWS::IAM::Policy"))
    .filter(([id]) => policy === undefined || id.includes(policy))
    .flatMap(([, r]) => r.Properties.PolicyDocument.Statement as Statement[]);
  if (policy !== undefined) return fromPolicies;
  const fromRoles = Object.values(t.findResources("AWS::IAM::Role")).flatMap((r) =>
    ((r.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
      (p) => p.PolicyDocument.Statement,
    ),
  );
  return [...fromPolicies, ...fromRoles];
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

describe("step 1: execute-api VPC endpoint", () => {
  it("is an interface endpoint for execute-api with private DNS in the given subnets", () => {
    endpoint.hasResourceProperties("AWS::EC2::VPCEndpoint", {
      VpcEndpointType: "Interface",
      ServiceName: { "Fn::Join": ["", Match.arrayWith([Match.stringLikeRegexp("\\.execute-api$")])] },
      PrivateDnsEnabled: true,
      VpcId: "vpc-0123456789abcdef0",
      SubnetIds: ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    });
  });

  it("accepts only TCP 443 from the allowed CIDR, nothing else", () => {
    endpoint.resourceCountIs("AWS::EC2::SecurityGroup", 1);
    endpoint.hasResourceProperties("AWS::EC2::SecurityGroup", {
      SecurityGroupIngress: [
        {
          CidrIp: "10.0.0.0/8",
          IpProtocol: "tcp",
          FromPort: 443,
          ToPort: 443,
          Description: Match.anyValue(),
        },
      ],
    });
    // No stand-alone ingress rules (e.g. the VPC-wide one `open: true` would add).
    endpoint.resourceCountIs("AWS::EC2::SecurityGroupIngress", 0);
  });

  it("lets the endpoint invoke only this account's APIs", () => {
    const ep = Object.values(endpoint.findResources("AWS::EC2::VPCEndpoint"))[0]!;
    const statements = ep.Properties.PolicyDocument.Statement as Statement[];
    expect(statements).toHaveLength(1);
    expect(statements[0]!.Action).toBe("execute-api:Invoke");
    expect(JSON.stringify(statements[0]!.Resource)).toContain('{"Ref":"AWS::AccountId"}');
  });

  it("can be pinned to the broker API once its id is known", () => {
    const pinned = synthBrokerApp({ VpcEndpointAllowedApiIds: "a1b2c3d4e5" });
    Template.fromStack(pinned.stacks.endpoint!).hasResourceProperties("AWS::EC2::VPCEndpoint", {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: "execute-api:Invoke",
            Resource: { "Fn::Join": ["", Match.arrayWith([":a1b2c3d4e5/*"])] },
          }),
        ],
      },
    });
  });
});

describe("step 2: KMS key", () => {
  it("is customer managed, symmetric, rotated and retained", () => {
    key.hasResource("AWS::KMS::Key", {
      Properties: Match.objectLike({
        EnableKeyRotation: true,
        KeySpec: Match.absent(), // absent = SYMMETRIC_DEFAULT
        KeyUsage: Match.absent(), // absent = ENCRYPT_DECRYPT
        PendingWindowInDays: 30,
      }),
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
  });

  it("allows use by the account's principals only through Systems Manager, and denies any other use", () => {
    const viaSsm = { "Fn::Join": ["", ["ssm.", { Ref: "AWS::Region" }, ".amazonaws.com"]] };
    key.hasResourceProperties("AWS::KMS::Key", {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: "AllowParameterStoreUseThroughSsm",
            Effect: "Allow",
            Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            Condition: {
              StringEquals: { "kms:ViaService": viaSsm, "kms:CallerAccount": { Ref: "AWS::AccountId" } },
            },
          }),
          Match.objectLike({
            Sid: "DenyUseOutsideSsm",
            Effect: "Deny",
            Principal: { AWS: "*" },
            Condition: { StringNotEquals: { "kms:ViaService": viaSsm } },
          }),
        ]),
      },
    });
  });
});

describe("step 3: the broker", () => {
  it("is a private REST API whose resource policy denies anything not through the VPC endpoint", () => {
    broker.hasResourceProperties("AWS::ApiGateway::RestApi", {
      EndpointConfiguration: { Types: ["PRIVATE"] },
      Policy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Allow", Action: "execute-api:Invoke", Principal: { AWS: "*" } }),
          Match.objectLike({
            Effect: "Deny",
            Action: "execute-api:Invoke",
            Principal: { AWS: "*" },
            Condition: {
              StringNotEquals: {
                "aws:SourceVpce": [Match.objectLike({ "Fn::ImportValue": Match.anyValue() })],
              },
            },
          }),
        ]),
      },
    });
  });

  it("narrows invocation to the allowed source ranges when they are configured", () => {
    broker.hasResourceProperties("AWS::ApiGateway::RestApi", {
      Policy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Condition: { NotIpAddress: { "aws:VpcSourceIp": ["10.20.0.0/16", "10.30.0.0/16"] } },
          }),
        ]),
      },
    });
  });

  it("names an existing endpoint directly when one is given", () => {
    const existing = synthBrokerApp({ VpcEndpointForApiGateway: "vpce-0a1b2c3d4e5f60718" });
    expect(existing.stacks.endpoint).toBeUndefined();
    Template.fromStack(existing.stacks.broker).hasResourceProperties("AWS::ApiGateway::RestApi", {
      Policy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Condition: { StringNotEquals: { "aws:SourceVpce": ["vpce-0a1b2c3d4e5f60718"] } },
          }),
        ]),
      },
    });
  });

  it("routes /, /activations/{pool}, /install.sh and /install.ps1 to the Lambda proxy only (ANY, so the broker answers 405)", () => {
    const methods = Object.values(broker.findResources("AWS::ApiGateway::Method"));
    expect(methods).toHaveLength(4);
    for (const m of methods) {
      expect(m.Properties.HttpMethod).toBe("ANY");
      expect(m.Properties.Integration.Type).toBe("AWS_PROXY");
    }
    const parts = Object.values(broker.findResources("AWS::ApiGateway::Resource")).map(
      (r) => r.Properties.PathPart,
    );
    expect(parts.sort()).toEqual(["activations", "install.ps1", "install.sh", "{pool}"]);
  });

  it("has no CORS at all, so certainly no Access-Control-Allow-Origin: *", () => {
    expect(JSON.stringify(broker.toJSON())).not.toMatch(/Access-Control-Allow-Origin/i);
    broker.resourcePropertiesCountIs("AWS::ApiGateway::Method", { HttpMethod: "OPTIONS" }, 0);
  });

  it("logs access, throttles, and never logs response data (the codes)", () => {
    broker.hasResourceProperties("AWS::ApiGateway::Stage", {
      StageName: "prod",
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("requestId") },
      TracingEnabled: true,
      MethodSettings: [
        Match.objectLike({
          HttpMethod: "*",
          ResourcePath: "/*",
          DataTraceEnabled: false,
          LoggingLevel: "ERROR",
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
        }),
      ],
    });
  });

  it("traces the stage and both functions with X-Ray (the constructs' tracing: false turns it off)", () => {
    broker.hasResourceProperties("AWS::ApiGateway::Stage", { TracingEnabled: true });
    expect(Object.keys(broker.findResources("AWS::Lambda::Function")).length).toBeGreaterThanOrEqual(2);
    broker.allResourcesProperties("AWS::Lambda::Function", { TracingConfig: { Mode: "Active" } });
    const app = new App({ context: { ...cdkJsonContext(), "aws:cdk:bundling-stacks": [] } });
    const off = Template.fromStack(
      new BrokerStack(app, "ActivationBroker-Untraced-Api", {
        vpcEndpointIds: ["vpce-0a1b2c3d4e5f60718"],
        kmsKey: "1234abcd-12ab-34cd-56ef-1234567890ab",
        tracing: false,
      }),
    );
    off.hasResourceProperties("AWS::ApiGateway::Stage", { TracingEnabled: false });
    off.hasResourceProperties("AWS::Lambda::Function", { TracingConfig: Match.absent() });
  });

  it("keeps every log group for a bounded time", () => {
    const groups = [broker, endpoint, key].flatMap((t) =>
      Object.values(t.findResources("AWS::Logs::LogGroup")),
    );
    expect(groups).toHaveLength(3); // the function's, the API access log, the janitor's
    for (const g of groups) expect(g.Properties.RetentionInDays).toBe(365);
  });

  it("stores pool state in an on-demand table with PITR, encryption and deletion protection", () => {
    broker.hasResource("AWS::DynamoDB::Table", {
      Properties: Match.objectLike({
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
        TableName: Match.absent(),
      }),
      DeletionPolicy: "Retain",
    });
  });

  it("runs the foundation's handler on nodejs24.x/arm64 with exactly the broker's environment", () => {
    broker.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      Environment: {
        Variables: {
          BROKER_TABLE_NAME: { Ref: Match.anyValue() },
          BROKER_PARAMETER_PREFIX: "/activation-broker/ActivationBroker-Api",
          BROKER_KMS_KEY_ID: { "Fn::ImportValue": Match.anyValue() },
          BROKER_DEFAULT_IAM_ROLE: { Ref: Match.anyValue() },
          BROKER_POOLS: Match.anyValue(),
          BROKER_DEPLOYMENT: Match.anyValue(),
          BROKER_PUBLIC_URL: { "Fn::Join": ["", Match.arrayWith(["https://", ".execute-api."])] },
          POWERTOOLS_SERVICE_NAME: "activation-broker",
          POWERTOOLS_LOG_LEVEL: "INFO",
          NODE_OPTIONS: "--enable-source-maps",
        },
      },
    });
  });

  it("passes the pools validated by the broker's own schema, explicit defaults included", () => {
    const fn = Object.values(broker.findResources("AWS::Lambda::Function"))[0]!;
    const pools = JSON.parse(fn.Properties.Environment.Variables.BROKER_POOLS);
    expect(Object.keys(pools.pools).sort()).toEqual(["linux", "windows"]);
    expect(pools.pools.linux).toMatchObject({
      registrationLimit: 500,
      expirationHours: 24,
      tags: { Team: "ops" },
    });
    expect(pools.pools.windows.iamRole).toBe("WindowsNodeRole");
  });

  it("gives managed nodes a role trusted only by SSM acting for this account", () => {
    broker.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Effect: "Allow",
            Action: "sts:AssumeRole",
            Principal: { Service: "ssm.amazonaws.com" },
            Condition: {
              StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
              ArnLike: { "aws:SourceArn": { "Fn::Join": ["", Match.arrayWith([":ssm:", ":*"])] } },
            },
          }),
        ],
      },
      ManagedPolicyArns: [
        { "Fn::Join": ["", Match.arrayWith([":iam::aws:policy/AmazonSSMManagedInstanceCore"])] },
      ],
      RoleName: Match.absent(),
    });
  });

  it("may pass only the node roles, and only to SSM", () => {
    const passRole = identityStatements(broker).filter((s) => actionsOf(s).includes("iam:PassRole"));
    expect(passRole).toHaveLength(1);
    const [statement] = passRole;
    expect(actionsOf(statement!)).toEqual(["iam:PassRole"]);
    expect(statement!.Condition).toEqual({ StringEquals: { "iam:PassedToService": "ssm.amazonaws.com" } });
    const resources = JSON.stringify(resourcesOf(statement!));
    expect(resources).not.toMatch(/"\*"|role\/\*/);
    // The created default role (by reference) and the one pool that names its own role.
    expect(resourcesOf(statement!)).toHaveLength(2);
    expect(resources).toContain(":role/WindowsNodeRole");
  });

  it("creates activations only with this deployment's tag and the configured tag keys", () => {
    const create = identityStatements(broker).find((s) => actionsOf(s).includes("ssm:CreateActivation"))!;
    expect(create.Condition!.StringEquals!["aws:RequestTag/activation-broker:deployment"]).toBeDefined();
    expect(create.Condition!["ForAllValues:StringLike"]).toEqual({
      "aws:TagKeys": ["activation-broker:*", "Team"],
    });
  });

  it("uses the key only through Parameter Store, and Parameter Store only under its prefix", () => {
    const kms = identityStatements(broker).find((s) => actionsOf(s).includes("kms:Decrypt"))!;
    expect(kms.Condition).toEqual({
      StringEquals: {
        "kms:ViaService": { "Fn::Join": ["", ["ssm.", { Ref: "AWS::Region" }, ".amazonaws.com"]] },
      },
    });
    expect(resourcesOf(kms)).not.toContain("*");
    const params = identityStatements(broker).find((s) => actionsOf(s).includes("ssm:PutParameter"))!;
    // The vend path reads codes with GetParameters (src/aws/parameter-store-secrets.ts), never GetParameter.
    expect([...actionsOf(params)].sort()).toEqual([
      "ssm:DeleteParameter",
      "ssm:GetParameters",
      "ssm:PutParameter",
    ]);
    for (const r of resourcesOf(params)) {
      expect(JSON.stringify(r)).toContain(":parameter/activation-broker/ActivationBroker-Api");
    }
  });

  it("grants Resource '*' only to actions that have no resource type, and no action wildcards", () => {
    // From the IAM Service Authorization Reference: these support no resource-level permissions.
    const needStar = new Set([
      "ssm:CreateActivation",
      "ssm:AddTagsToResource", // implied by CreateActivation with tags; conditioned on the request tags
      "ssm:DescribeActivations",
      "ssm:DeleteActivation",
      "ssm:DescribeInstanceInformation", // the janitor's
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
    ]);
    const optIn = synthBrokerApp({ Pools: POOLS });
    for (const t of [broker, Template.fromStack(optIn.stacks.broker)]) {
      for (const s of identityStatements(t).filter((x) => x.Effect === "Allow")) {
        for (const action of actionsOf(s)) expect(action, "action wildcard").not.toMatch(/\*/);
        if (resourcesOf(s).some((r) => r === "*")) {
          for (const action of actionsOf(s)) expect(needStar, `${action} on "*"`).toContain(action);
        }
      }
    }
  });

  it("limits the table permissions to the two operations a vend performs (no Scan: that is the janitor's)", () => {
    const ddb = identityStatements(broker, "BrokerPolicy").filter((s) =>
      actionsOf(s).some((a) => a.startsWith("dynamodb:")),
    );
    expect(ddb.flatMap(actionsOf).sort()).toEqual(["dynamodb:GetItem", "dynamodb:UpdateItem"]);
  });

  it("lets only this API's routes invoke the function", () => {
    const permissions = Object.values(broker.findResources("AWS::Lambda::Permission")).filter(
      (p) => p.Properties.Principal !== "events.amazonaws.com", // the janitor's schedule
    );
    expect(permissions).toHaveLength(4);
    for (const p of permissions) {
      expect(p.Properties.Principal).toBe("apigateway.amazonaws.com");
      expect(JSON.stringify(p.Properties.SourceArn)).toMatch(/"\/\*\//);
    }
  });

  it("outputs the invoke URL, the curl line and the install one-liners", () => {
    const outputs = broker.toJSON().Outputs as Record<string, { Value: unknown }>;
    const text = (id: string) => JSON.stringify(outputs[id]!.Value);
    expect(text("InvokeUrl")).toContain("https://");
    expect(text("ActivationCodeCommand")).toMatch(/curl -s https:\/\/.*\| jq -r \.ActivationCode/);
    expect(text("LinuxInstallCommand")).toMatch(/curl -fsSL https:\/\/.*\/install\.sh \| sudo bash/);
    expect(text("WindowsInstallCommand")).toMatch(/Invoke-RestMethod .*\/install\.ps1/);
  });
});
