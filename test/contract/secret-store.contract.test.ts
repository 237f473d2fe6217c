import { randomUUID } from "node:crypto";
import { describe } from "vitest";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { InMemorySecrets } from "../support/fakes";
import { startEmulatedAws } from "../support/emulated-aws";
import { secretStoreContract } from "./secret-store.contract";

describe("InMemorySecrets (test/support/fakes.ts)", () => {
  secretStoreContract(async () => ({ store: new InMemorySecrets() }));
});

describe("ParameterStoreSecrets over the emulator", () => {
  secretStoreContract(async () => {
    const aws = await startEmulatedAws();
    const store = new ParameterStoreSecrets(aws.ssm, {
      prefix: `/activation-broker-test/${randomUUID().slice(0, 8)}`,
      kmsKeyId: "alias/aws/ssm",
      deployment: "contract",
    });
    return { store, cleanup: () => aws.close() };
  });
});
