import type { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { registerNode } from "../support/local";

const HOUR = 3_600_000;

/** What a refused-pair claim is checked against: SSM's own view of one activation. */
describe("SsmActivations.status", () => {
  let aws: EmulatedAws;
  let activations: SsmActivations;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    activations = new SsmActivations(aws.ssm);
  });
  afterAll(async () => {
    await aws?.close();
  });

  async function anActivation(limit = 2) {
    const expiresAt = Math.floor((Date.now() + 2 * HOUR) / 1000) * 1000;
    const created = await activations.create({
      pool: "web",
      generation: 1,
      iamRole: TEST_ROLE,
      registrationLimit: limit,
      expiresAt,
      tags: {},
    });
    return { ...created, expiresAt };
  }

  it("says the counts, the expiry and that it has not expired", async () => {
    const { activationId, activationCode, expiresAt } = await anActivation();
    await registerNode(aws.url, { ActivationId: activationId, ActivationCode: activationCode });
    expect(await activations.status(activationId)).toEqual({
      activationId,
      registrationLimit: 2,
      registrationsCount: 1,
      expiresAt,
      expired: false,
    });
    expect(await activations.describe(activationId)).toEqual({
      activationId,
      registrationLimit: 2,
      registrationsCount: 1,
    });
  });

  it("says when SSM counts it expired", async () => {
    const { activationId } = await anActivation();
    aws.emulator.controls.setClockOffset(3 * 3600);
    try {
      expect(await activations.status(activationId)).toMatchObject({ expired: true });
    } finally {
      aws.emulator.controls.setClockOffset(0);
    }
  });

  it("reads a missing expiry as already past (the side that retires) and a missing flag as not expired", async () => {
    const activationId = "11111111-2222-4333-8444-555555555555";
    const client = {
      send: async () => ({ ActivationList: [{ ActivationId: activationId }] }),
    } as unknown as SSMClient;
    expect(await new SsmActivations(client).status(activationId)).toEqual({
      activationId,
      registrationLimit: 0,
      registrationsCount: 0,
      expiresAt: 0,
      expired: false,
    });
  });

  it("is undefined once the activation is deleted", async () => {
    const { activationId } = await anActivation();
    await activations.delete(activationId);
    expect(await activations.status(activationId)).toBeUndefined();
    expect(await activations.describe(activationId)).toBeUndefined();
  });
});
