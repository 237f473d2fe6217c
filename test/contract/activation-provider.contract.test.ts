import { randomUUID } from "node:crypto";
import { describe } from "vitest";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { SsmActivationInventory } from "../../src/aws/ssm-inventory";
import { InMemoryActivations } from "../support/fakes";
import { TEST_ROLE, startEmulatedAws } from "../support/emulated-aws";
import { activationProviderContract } from "./activation-provider.contract";

describe("InMemoryActivations (test/support/fakes.ts)", () => {
  activationProviderContract(async () => {
    const fake = new InMemoryActivations();
    return { provider: fake, inventory: fake, deployment: "fake", iamRole: TEST_ROLE };
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
      cleanup: () => aws.close(),
    };
  });
});
