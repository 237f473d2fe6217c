import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/settings";
import { synthBrokerApp } from "./support";

/**
 * The broker rejects unknown BROKER_* variables at start-up, so an environment the CDK app writes
 * and the broker's schema disagree on would make every request a 500. Resolve the synthesized
 * environment's tokens to plausible values and load it exactly as the Lambda does.
 */
function functionEnvironment(context: Record<string, unknown> = {}): Record<string, string> {
  const { stacks } = synthBrokerApp(context);
  const fns = Template.fromStack(stacks.broker).findResources("AWS::Lambda::Function");
  const broker = Object.values(fns).find((f) => f.Properties.Environment?.Variables?.BROKER_TABLE_NAME);
  const variables = broker!.Properties.Environment.Variables as Record<string, unknown>;
  const placeholder: Record<string, string> = {
    BROKER_TABLE_NAME: "ActivationBroker-Api-BrokerPoolTable-1A2B3C",
    BROKER_KMS_KEY_ID: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    BROKER_DEFAULT_IAM_ROLE: "ActivationBroker-Api-BrokerNodeRole-1A2B3C",
    BROKER_DEPLOYMENT: "ActivationBroker-Api:0a1b2c3d",
    BROKER_PUBLIC_URL: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    BROKER_VPC_ENDPOINT_FOR_API_GATEWAY: "vpce-0a1b2c3d4e5f60718",
  };
  return Object.fromEntries(
    Object.entries(variables).map(([k, v]) => [
      k,
      typeof v === "string" ? v : (placeholder[k] ?? "UNRESOLVED"),
    ]),
  );
}

describe("the function's environment", () => {
  it("is accepted by the broker's own settings loader", () => {
    const env = functionEnvironment();
    expect(Object.values(env)).not.toContain("UNRESOLVED");
    const settings = loadSettings({ ...env, AWS_REGION: "eu-west-1" });
    expect(settings.deployment).toBe("ActivationBroker-Api:0a1b2c3d");
    expect(settings.pools.has("default")).toBe(true);
  });

  it("carries configured pools through to the broker", () => {
    const env = functionEnvironment({ Pools: { web: { registrationLimit: 10, tags: { team: "web" } } } });
    const settings = loadSettings({ ...env, AWS_REGION: "eu-west-1" });
    expect(settings.pools.get("web")).toMatchObject({ registrationLimit: 10, tags: { team: "web" } });
  });
});
