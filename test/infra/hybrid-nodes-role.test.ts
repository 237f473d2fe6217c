import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT } from "aws-cdk-lib/cx-api";
import { beforeAll, describe, expect, it } from "vitest";
import { BrokerStack } from "../../infra/stacks/broker-stack";
import { EXISTING_RESOURCES, acknowledgments, synthBrokerApp, type SynthesizedApp } from "./support";

/** EKS Hybrid Nodes in the CDK app: the hybrid nodes role, its conditions, PassRole, the route. */

const EDGE = "arn:aws:eks:eu-west-1:123456789012:cluster/edge";
const LAB = "arn:aws:eks:eu-west-1:123456789012:cluster/lab";
const OWN = "arn:aws:eks:eu-west-1:123456789012:cluster/own-role";
const POOLS = {
  linux: {},
  edge: { eksClusterArn: EDGE, nodeLabels: { site: "edge" } },
  lab: { eksClusterArn: LAB },
  own: { eksClusterArn: OWN, iamRole: "TeamHybridRole" },
};

interface Statement {
  Sid?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function roleOf(t: Template, description: RegExp) {
  const roles = Object.entries(t.findResources("AWS::IAM::Role")).filter(([, r]) =>
    description.test(String(r.Properties.Description)),
  );
  expect(roles).toHaveLength(1);
  return { id: roles[0]![0], props: roles[0]![1].Properties };
}

function statementsOf(t: Template): Statement[] {
  const docs = [
    ...Object.values(t.findResources("AWS::IAM::Policy")).map((p) => p.Properties.PolicyDocument),
    ...Object.values(t.findResources("AWS::IAM::Role")).flatMap((r) =>
      (r.Properties.Policies ?? []).map((p: { PolicyDocument: unknown }) => p.PolicyDocument),
    ),
  ] as { Statement: Statement[] }[];
  return docs.flatMap((d) => d.Statement);
}

/** The assertions of the Region rule; CDK's own bootstrap-version rule is not ours. */
function regionRules(t: Template): unknown[] {
  const rules = (t.toJSON().Rules ?? {}) as Record<string, { Assertions: unknown[] }>;
  return Object.entries(rules)
    .filter(([id]) => id.includes("EksClustersInStackRegion"))
    .flatMap(([, r]) => r.Assertions);
}

describe("an app with EKS pools", () => {
  let deployed: SynthesizedApp;
  let broker: Template;

  beforeAll(() => {
    deployed = synthBrokerApp({ ...EXISTING_RESOURCES, Pools: POOLS });
    broker = Template.fromStack(deployed.stacks.broker);
  });

  it("creates one hybrid nodes role that SSM may assume only for this account and Region", () => {
    const { props } = roleOf(broker, /EKS Hybrid Nodes/);
    expect(props.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: "Allow",
        Action: "sts:AssumeRole",
        Principal: { Service: "ssm.amazonaws.com" },
        Condition: {
          StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
          ArnLike: {
            "aws:SourceArn": {
              "Fn::Join": [
                "",
                [
                  "arn:",
                  { Ref: "AWS::Partition" },
                  ":ssm:",
                  { Ref: "AWS::Region" },
                  ":",
                  { Ref: "AWS::AccountId" },
                  ":*",
                ],
              ],
            },
          },
        },
      },
    ]);
    const managed = JSON.stringify(props.ManagedPolicyArns);
    expect(props.ManagedPolicyArns).toHaveLength(2);
    expect(managed).toContain(":iam::aws:policy/AmazonSSMManagedInstanceCore");
    expect(managed).toContain(":iam::aws:policy/AmazonEC2ContainerRegistryPullOnly");
  });

  it("outlives the stack: the nodes keep their credentials when the broker is deleted", () => {
    const { id } = roleOf(broker, /EKS Hybrid Nodes/);
    expect(broker.toJSON().Resources[id]).toMatchObject({
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
  });

  it("may describe only its clusters and deregister only nodes tagged with one of them", () => {
    const { props } = roleOf(broker, /EKS Hybrid Nodes/);
    const statements = props.Policies[0].PolicyDocument.Statement as Statement[];
    expect(statements).toContainEqual({
      Sid: "DescribeOwnCluster",
      Effect: "Allow",
      Action: "eks:DescribeCluster",
      Resource: [EDGE, LAB], // not the pool that names its own role
    });
    broker.hasResourceProperties("AWS::IAM::Role", {
      Description: Match.stringLikeRegexp("EKS Hybrid Nodes"),
      Policies: [
        Match.objectLike({
          PolicyDocument: Match.objectLike({
            Statement: Match.arrayWith([
              Match.objectLike({
                Sid: "DeregisterOwnClusterNodesOnly",
                Action: "ssm:DeregisterManagedInstance",
                Resource: { "Fn::Join": ["", Match.arrayWith([":managed-instance/*"])] },
                Condition: { StringEquals: { "ssm:resourceTag/EKSClusterARN": [EDGE, LAB] } },
              }),
            ]),
          }),
        }),
      ],
    });
    // Nothing else it may do without a condition or a named resource, bar the lookup nodeadm needs.
    const unconditionedStars = statements.filter((s) => s.Resource === "*" && !s.Condition);
    expect(unconditionedStars.flatMap((s) => list(s.Action))).toEqual(["ssm:DescribeInstanceInformation"]);
  });

  it("lets the broker pass exactly the roles its pools use, to SSM only", () => {
    const { id } = roleOf(broker, /EKS Hybrid Nodes/);
    const nodeRole = roleOf(broker, /Service role assumed by on-premises managed nodes/).id;
    const passRole = statementsOf(broker).filter((s) => list(s.Action).includes("iam:PassRole"));
    expect(passRole).toHaveLength(1);
    const resources = list(passRole[0]!.Resource).map((r) => JSON.stringify(r));
    expect(resources).toHaveLength(3);
    expect(resources.some((r) => r.includes(`{"Ref":"${id}"}`))).toBe(true);
    expect(resources.some((r) => r.includes(`{"Ref":"${nodeRole}"}`))).toBe(true);
    expect(resources.some((r) => r.includes(":role/TeamHybridRole"))).toBe(true);
  });

  it("lets the broker set the EKSClusterARN tag, names the role in its environment, routes /nodeconfig.yaml", () => {
    const create = statementsOf(broker).find((s) => list(s.Action).includes("ssm:CreateActivation"))!;
    expect(create.Condition!["ForAllValues:StringLike"]!["aws:TagKeys"]).toContain("EKSClusterARN");
    const { id } = roleOf(broker, /EKS Hybrid Nodes/);
    broker.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ BROKER_HYBRID_NODES_ROLE: { Ref: id } }) },
    });
    broker.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "nodeconfig.yaml" });
    broker.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "install-eks.sh" });
    broker.hasOutput("HybridNodesRoleName", { Value: { Ref: id } });
    broker.hasOutput("EksInstallCommand", {
      Value: {
        "Fn::Join": [
          "",
          Match.arrayWith([
            '/prod/install-eks.sh?pool=<pool>" | sudo bash -s -- --kubernetes-version <version>',
          ]),
        ],
      },
    });
    broker.hasOutput("NodeConfigUrlTemplate", {
      Value: { "Fn::Join": ["", Match.arrayWith(["/prod/nodeconfig.yaml?pool={pool}"])] },
    });
  });

  it("refuses to deploy outside the clusters' Region (environment-agnostic stack)", () => {
    expect(regionRules(broker)).toEqual([
      {
        Assert: { "Fn::Equals": [{ Ref: "AWS::Region" }, "eu-west-1"] },
        AssertDescription: expect.stringContaining("deploy the broker in eu-west-1"),
      },
    ]);
  });

  it("is cdk-nag clean, every acknowledgment explained in docs/eks.md", () => {
    expect(deployed.findings).toEqual([]);
    const docs = readFileSync(join(import.meta.dirname, "..", "..", "docs", "eks.md"), "utf8");
    const acks = acknowledgments(deployed.app).filter((a) => a.path.includes("HybridNodesRole"));
    expect(acks).toHaveLength(4);
    for (const a of acks) expect(docs, a.id).toContain(a.id.replace(/^Annotation::/, ""));
  });
});

describe("EKS pools with an existing hybrid nodes role", () => {
  it("create no role and pass the named one", () => {
    const { stacks } = synthBrokerApp({
      ...EXISTING_RESOURCES,
      HybridNodesRole: "AmazonEKSHybridNodesRole",
      Pools: { edge: { eksClusterArn: EDGE } },
    });
    const broker = Template.fromStack(stacks.broker);
    expect(JSON.stringify(broker.findResources("AWS::IAM::Role"))).not.toMatch(/EKS Hybrid Nodes/);
    const passRole = statementsOf(broker).find((s) => list(s.Action).includes("iam:PassRole"))!;
    expect(JSON.stringify(passRole.Resource)).toContain(":role/AmazonEKSHybridNodesRole");
    broker.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ BROKER_HYBRID_NODES_ROLE: "AmazonEKSHybridNodesRole" }) },
    });
  });
});

describe("an app without EKS pools", () => {
  it("has no hybrid nodes role, no /nodeconfig.yaml route and no Region rule", () => {
    const broker = Template.fromStack(synthBrokerApp(EXISTING_RESOURCES).stacks.broker);
    expect(JSON.stringify(broker.findResources("AWS::IAM::Role"))).not.toMatch(/EKS Hybrid Nodes/);
    broker.resourcePropertiesCountIs("AWS::ApiGateway::Resource", { PathPart: "nodeconfig.yaml" }, 0);
    expect(regionRules(broker)).toEqual([]);
  });
});

describe("bad EKS settings fail synth with one line", () => {
  it.each([
    [{ Pools: { edge: { eksClusterArn: "arn:aws:eks:eu-west-1:12345:cluster/edge" } } }, "12 digits"],
    [
      { Pools: { edge: { eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/bad.name" } } },
      "cluster name",
    ],
    [{ Pools: { edge: { eksClusterArn: EDGE } }, HybridNodesRole: "bad role" }, "HybridNodesRole"],
  ])("%j", (context, reason) => {
    let message = "";
    try {
      synthBrokerApp({ ...EXISTING_RESOURCES, ...context });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(reason);
    expect(message).not.toContain("\n");
  });

  it("a cluster in another Region than a stack with a known Region", () => {
    const app = new App({
      context: { [FAIL_SYNTH_ON_VALIDATION_ERRORS_CONTEXT]: false, "aws:cdk:bundling-stacks": [] },
    });
    expect(
      () =>
        new BrokerStack(app, "Pinned", {
          env: { account: "123456789012", region: "us-east-1" },
          vpcEndpointIds: [EXISTING_RESOURCES.VpcEndpointForApiGateway],
          kmsKey: EXISTING_RESOURCES.KmsKeyId,
          pools: { pools: { edge: { eksClusterArn: EDGE } } },
        }),
    ).toThrow(
      "pools.edge.eksClusterArn: the cluster is in eu-west-1 but this broker creates activations in us-east-1",
    );
  });
});
