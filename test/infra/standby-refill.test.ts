import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, expect, it } from "vitest";
import { synthBrokerApp } from "./support";

let broker: Template;
beforeAll(() => {
  broker = Template.fromStack(synthBrokerApp().stacks.broker);
});

it("lets the broker function invoke itself, and only itself, for standby refills (I9)", () => {
  const functions = broker.findResources("AWS::Lambda::Function", {
    Properties: { Description: "SSM hybrid activation broker" },
  });
  const [functionId] = Object.keys(functions);
  expect(functionId).toBeDefined();
  const roleRef = (functions[functionId!]!.Properties as { Role: { "Fn::GetAtt": [string, string] } }).Role;

  const policies = broker.findResources("AWS::IAM::Policy", {
    Properties: {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: "lambda:InvokeFunction" })]),
      },
    },
  });
  expect(Object.keys(policies)).toHaveLength(1);
  const policy = Object.values(policies)[0]!.Properties as {
    PolicyDocument: { Statement: { Action: unknown; Resource: unknown; Effect: string }[] };
    Roles: unknown[];
  };
  expect(policy.PolicyDocument.Statement).toEqual([
    expect.objectContaining({
      Effect: "Allow",
      Action: "lambda:InvokeFunction",
      Resource: { "Fn::GetAtt": [functionId, "Arn"] },
    }),
  ]);
  expect(policy.Roles).toEqual([{ Ref: roleRef["Fn::GetAtt"][0] }]);
});

it("grants lambda:InvokeFunction in no other IAM policy", () => {
  const iam = [
    ...Object.values(broker.findResources("AWS::IAM::Policy")),
    ...Object.values(broker.findResources("AWS::IAM::Role")),
  ];
  expect(JSON.stringify(iam).match(/lambda:InvokeFunction/g)).toHaveLength(1);
});
