import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  CreateActivationCommand,
  DescribeActivationsCommand,
  DescribeInstanceInformationCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { agentFixture, DAY_SECONDS, MANAGED_INSTANCE_ID, registerLikeAgent } from "./helpers";

let aws: EmulatedAws;

let emulator: Emulator;
let ssm: SSMClient;

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  ssm = aws.rawSsm();
});
afterAll(async () => {
  ssm.destroy();
  await aws?.close();
});
beforeEach(() => emulator.controls.reset());

async function activation(limit: number): Promise<{ id: string; code: string }> {
  const created = await ssm.send(
    new CreateActivationCommand({
      IamRole: "SSMServiceRole",
      RegistrationLimit: limit,
      DefaultInstanceName: "agent",
    }),
  );
  return { id: created.ActivationId as string, code: created.ActivationCode as string };
}

describe("RegisterManagedInstance as the SSM Agent sends it", () => {
  it("the recorded request is unsigned and targets AmazonSSM.RegisterManagedInstance", () => {
    expect(Object.keys(agentFixture.headers).map((h) => h.toLowerCase())).not.toContain("authorization");
    expect(agentFixture.headers["X-Amz-Target"]).toBe("AmazonSSM.RegisterManagedInstance");
  });

  it("answers 200 {InstanceId: mi-…}, counts the registration and lists the node", async () => {
    const { id, code } = await activation(2);
    const response = await fetch(emulator.url + agentFixture.path, {
      method: agentFixture.method,
      headers: Object.fromEntries(
        Object.entries(agentFixture.headers).filter(([h]) => h !== "Content-Length"),
      ),
      body: JSON.stringify(agentFixture.body)
        .replace("<ACTIVATION-ID>", id)
        .replace("<ACTIVATION-CODE>", code),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    expect(response.headers.get("x-amzn-requestid")).toMatch(/.+/);
    const body = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(["InstanceId"]);
    expect(body.InstanceId).toMatch(MANAGED_INSTANCE_ID);

    const { ActivationList } = await ssm.send(new DescribeActivationsCommand({}));
    expect(ActivationList?.[0]?.RegistrationsCount).toBe(1);
    const { InstanceInformationList } = await ssm.send(
      new DescribeInstanceInformationCommand({ Filters: [{ Key: "ActivationIds", Values: [id] }] }),
    );
    expect(InstanceInformationList?.map((n) => [n.InstanceId, n.Name, n.IamRole])).toEqual([
      [body.InstanceId, "agent", "SSMServiceRole"],
    ]);
  });

  it("RegistrationLimitExceeded once the limit is reached", async () => {
    const { id, code } = await activation(1);
    expect((await registerLikeAgent(emulator.url, id, code)).status).toBe(200);
    const refused = await registerLikeAgent(emulator.url, id, code);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ __type: "RegistrationLimitExceeded", Message: expect.any(String) });
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList?.[0]?.RegistrationsCount).toBe(
      1,
    );
  });

  it("ActivationExpired once the emulator's clock passes the expiry", async () => {
    const { id, code } = await activation(5);
    emulator.controls.setClockOffset(DAY_SECONDS + 60);
    const refused = await registerLikeAgent(emulator.url, id, code);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ __type: "ActivationExpired", Message: expect.any(String) });
    expect(emulator.controls.managedNodes()).toEqual([]);
  });

  it("InvalidActivation for a wrong code or an unknown ID, without echoing the code", async () => {
    const { id, code } = await activation(5);
    const wrongCode = `${code.slice(0, 19)}${code.endsWith("A") ? "B" : "A"}`;
    for (const [tryId, tryCode] of [
      [id, wrongCode],
      ["00000000-0000-4000-8000-000000000000", code],
    ] as const) {
      const refused = await registerLikeAgent(emulator.url, tryId, tryCode);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ __type: "InvalidActivation", Message: expect.any(String) });
      expect(JSON.stringify(refused.body)).not.toContain(tryCode);
    }
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList?.[0]?.RegistrationsCount).toBe(
      0,
    );
  });

  it("200 concurrent registrations against a limit of 50: exactly 50 succeed", async () => {
    const { id, code } = await activation(50);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => registerLikeAgent(emulator.url, id, code)),
    );
    const ok = answers.filter((a) => a.status === 200);
    expect(ok).toHaveLength(50);
    expect(new Set(ok.map((a) => a.body.InstanceId)).size).toBe(50);
    expect(
      answers.filter((a) => a.status === 400 && a.body.__type === "RegistrationLimitExceeded"),
    ).toHaveLength(150);
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList?.[0]?.RegistrationsCount).toBe(
      50,
    );
    expect(emulator.controls.counters()["ssm:RegisterManagedInstance"]).toBe(200);
  });
});
