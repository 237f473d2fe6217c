import { describe } from "vitest";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { InMemoryPoolStore } from "../support/fakes";
import { startEmulatedAws } from "../support/emulated-aws";
import { poolStoreContract } from "./pool-store.contract";

describe("InMemoryPoolStore (test/support/fakes.ts)", () => {
  poolStoreContract(async () => ({ store: new InMemoryPoolStore() }));
});

describe("DynamoDbPoolStore over the emulator", () => {
  poolStoreContract(async () => {
    const aws = await startEmulatedAws();
    const tableName = await aws.newTable();
    return { store: new DynamoDbPoolStore(aws.dynamodb, tableName), cleanup: () => aws.close() };
  });
});
