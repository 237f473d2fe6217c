import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { synthBrokerApp } from "./support";

/**
 * The janitor (schedule, its own least-privilege role) and the alarms, asserted by shape with
 * Match. Each IAM assertion has its compliant and its non-compliant case: hygiene grants appear
 * only when a pool opts in, and the broker's role holds none of the inventory reads.
 */

interface Statement {
  Sid?: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

function policyStatements(t: Template, logicalIdPart: string): Statement[] {
  return Object.entries(t.findResources("AWS::IAM::Policy"))
    .filter(([id]) => id.includes(logicalIdPart))
    .flatMap(([, r]) => r.Properties.PolicyDocument.Statement as Statement[]);
}

const HYGIENE_POOLS = {
  web: { hygiene: { nameTag: true } },
  db: { registrationLimit: 10, hygiene: { nameTag: true, deregisterDuplicatesAfterDays: 3 } },
};
// DescribeActivations stays on the broker: a rotation describes the one activation it replaces.
const INVENTORY_ACTIONS = [
  "dynamodb:Scan",
  "ssm:GetParametersByPath",
  "ssm:DescribeInstanceInformation",
  "ssm:AddTagsToResource",
  "ssm:DeregisterManagedInstance",
];

let plain: Template;
let hygiene: Template;

beforeAll(() => {
  plain = Template.fromStack(synthBrokerApp({}).stacks.broker);
  hygiene = Template.fromStack(synthBrokerApp({ Pools: HYGIENE_POOLS }).stacks.broker);
});

describe("janitor", () => {
  it("runs hourly", () => {
    plain.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 hour)",
      State: "ENABLED",
      Targets: [
        Match.objectLike({ Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^JanitorFunction"), "Arn"] } }),
      ],
    });
  });

  it("is its own function on nodejs24.x with one run at a time and its own role", () => {
    plain.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs24.x",
      Description: Match.stringLikeRegexp("janitor"),
      ReservedConcurrentExecutions: 1,
      Role: { "Fn::GetAtt": [Match.stringLikeRegexp("^JanitorRole"), "Arn"] },
      Environment: {
        Variables: Match.objectLike({
          BROKER_TABLE_NAME: Match.anyValue(),
          BROKER_DEPLOYMENT: Match.anyValue(),
          BROKER_POOLS: Match.anyValue(),
        }),
      },
    });
  });

  it("may list and delete, but neither decrypt a code nor create anything", () => {
    const statements = policyStatements(plain, "JanitorPolicy");
    const actions = statements.flatMap(actionsOf).sort();
    expect(actions).toEqual([
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
      "ssm:DeleteActivation",
      "ssm:DeleteParameter",
      "ssm:DescribeActivations",
      "ssm:DescribeInstanceInformation",
      "ssm:GetParametersByPath",
    ]);
    const byPath = statements.find((s) => actionsOf(s).includes("ssm:GetParametersByPath"))!;
    expect(JSON.stringify(byPath.Resource)).toMatch(/parameter\/activation-broker\/ActivationBroker-Api"/);
    const deletes = statements.find((s) => actionsOf(s).includes("ssm:DeleteParameter"))!;
    expect(JSON.stringify(deletes.Resource)).toMatch(
      /parameter\/activation-broker\/ActivationBroker-Api\/\*"/,
    );
  });

  it("may tag (Name only) and deregister nodes only when a pool opts in, and only this deployment's", () => {
    const statements = policyStatements(hygiene, "JanitorPolicy");
    const tag = statements.find((s) => actionsOf(s).includes("ssm:AddTagsToResource"))!;
    const deregister = statements.find((s) => actionsOf(s).includes("ssm:DeregisterManagedInstance"))!;
    for (const s of [tag, deregister]) {
      expect(actionsOf(s)).toHaveLength(1);
      expect(JSON.stringify(s.Resource)).toContain(":managed-instance/*");
      expect(s.Condition!.StringEquals!["ssm:resourceTag/activation-broker:deployment"]).toBeDefined();
    }
    expect(tag.Condition!["ForAllValues:StringEquals"]).toEqual({ "aws:TagKeys": ["Name"] });

    const onlyNames = Template.fromStack(
      synthBrokerApp({ Pools: { web: { hygiene: { nameTag: true } } } }).stacks.broker,
    );
    const some = policyStatements(onlyNames, "JanitorPolicy").flatMap(actionsOf);
    expect(some).toContain("ssm:AddTagsToResource");
    expect(some).not.toContain("ssm:DeregisterManagedInstance");
  });

  it("leaves the broker's role without any inventory read or hygiene action", () => {
    for (const t of [plain, hygiene]) {
      const broker = policyStatements(t, "BrokerPolicy").flatMap(actionsOf);
      expect(broker).toContain("ssm:CreateActivation"); // the right policy was found
      for (const action of INVENTORY_ACTIONS) {
        if (action === "ssm:AddTagsToResource") continue; // implied by tagged CreateActivation only
        expect(broker, action).not.toContain(action);
      }
      const tagging = policyStatements(t, "BrokerPolicy").find((s) =>
        actionsOf(s).includes("ssm:AddTagsToResource"),
      )!;
      expect(actionsOf(tagging)).toContain("ssm:CreateActivation");
      expect(tagging.Condition!.StringEquals).toHaveProperty(["aws:RequestTag/activation-broker:deployment"]);
    }
  });
});

describe("alarms and dashboard (cdk-monitoring-constructs)", () => {
  const alarm = (props: Record<string, unknown>) =>
    hygiene.hasResourceProperties("AWS::CloudWatch::Alarm", Match.objectLike(props));

  /** An alarm on one metric, whether CloudFormation renders it as a metric or a metric query. */
  const metricAlarm = (metric: Record<string, unknown>, props: Record<string, unknown>) =>
    alarm({
      ...props,
      Metrics: Match.arrayWith([
        Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike(metric) }) }),
      ]),
    });

  it("alarms on any API 5xx", () => {
    metricAlarm(
      {
        MetricName: "5XXError",
        Namespace: "AWS/ApiGateway",
        Dimensions: Match.arrayWith([{ Name: "Stage", Value: "prod" }]),
      },
      { ComparisonOperator: "GreaterThanThreshold", Threshold: 0 },
    );
  });

  it("alarms on any failed rotation", () => {
    alarm({
      MetricName: "RotationFailures",
      Namespace: "ActivationBroker",
      Statistic: "Sum",
      ComparisonOperator: "GreaterThanThreshold",
      Threshold: 0,
      TreatMissingData: "notBreaching",
    });
  });

  it("alarms when some pool stays out of slots for an hour, watching every pool (default, web, db)", () => {
    alarm({
      ComparisonOperator: "LessThanOrEqualToThreshold",
      Threshold: 0,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: "MIN([p0,p1,p2])" }),
        Match.objectLike({
          Id: "p0",
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              MetricName: "SlotsLeft",
              Dimensions: Match.arrayWith([{ Name: "Pool", Value: "default" }]),
            }),
            Stat: "Maximum",
            Period: 3600,
          }),
        }),
      ]),
    });
  });

  it("alarms when the standard tier's headroom falls under 10%", () => {
    alarm({
      MetricName: "TierHeadroomPercent",
      Namespace: "ActivationBroker",
      ComparisonOperator: "LessThanThreshold",
      Threshold: 10,
    });
  });

  it("alarms on any janitor failure", () => {
    metricAlarm(
      {
        MetricName: "Errors",
        Namespace: "AWS/Lambda",
        Dimensions: [{ Name: "FunctionName", Value: { Ref: Match.stringLikeRegexp("^JanitorFunction") } }],
      },
      { ComparisonOperator: "GreaterThanThreshold", Threshold: 0 },
    );
  });

  it("puts six alarms and one dashboard in the stack, and no code anywhere", () => {
    hygiene.resourceCountIs("AWS::CloudWatch::Alarm", 6);
    hygiene.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    // Every alarm notifies the stack's encrypted topic (output AlarmTopicArn).
    for (const a of Object.values(hygiene.findResources("AWS::CloudWatch::Alarm"))) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/AlarmTopic/) }]);
    }
    hygiene.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
    expect(JSON.stringify(hygiene.findResources("AWS::CloudWatch::Alarm"))).not.toMatch(/ActivationCode/);
  });
});
