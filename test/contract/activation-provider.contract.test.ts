import { randomUUID } from "node:crypto";
import { describe, expect } from "vitest";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { SsmActivationInventory } from "../../src/aws/ssm-inventory";
import { InMemoryActivations } from "../support/fakes";
import { TEST_ROLE, startEmulatedAws } from "../support/emulated-aws";
import { registerNode } from "../support/local";
import { activationProviderContract } from "./activation-provider.contract";

describe("InMemoryActivations (test/support/fakes.ts)", () => {
  activationProviderContract(async () => {
    const fake = new InMemoryActivations();
    return {
      provider: fake,
      inventory: fake,
      deployment: "fake",
      iamRole: TEST_ROLE,
      register: async (a) => fake.register(a.activationId),
    };
  });
});

describe("SsmActivations over the emulator", () => {
  activationProviderContract(async () => {
    const aws = await startEmulatedAws();
    const deployment = `contract-${randomUUID().slice(0, 8)}`;
    return {
      provider: new SsmActivations(aws.ssm),
      inventory: new SsmActivationInventory(aws.ssm),
      deployment,
      iamRole: TEST_ROLE,
      register: async (a) => {
        const pair = { ActivationId: a.activationId, ActivationCode: a.activationCode };
        expect((await registerNode(aws.url, pair)).status).toBe(200);
      },
      cleanup: () => aws.close(),
    };
  });
});
