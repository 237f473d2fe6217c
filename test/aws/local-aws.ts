/**
 * The real adapters' environment in tests: a private emulator on an ephemeral port, SDK clients
 * built by createAwsClients as production builds them, dummy credentials.
 *
 * One difference: the emulator runs in the test's own event loop, so while it serves a burst
 * (300 racing reserves) the client's connect/response events wait behind it, and production's
 * 1 s connect timeout fires on a loaded CI machine although nothing is wrong. Tests of the
 * timeouts themselves (clients.test.ts) pass `timeouts: undefined` to get production's values.
 */
import { randomUUID } from "node:crypto";
import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients, type AwsClients, type AwsClientsOptions } from "../../src/aws/clients";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";

export const TEST_REGION = "us-east-1";
export const TEST_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;
export const TEST_ROLE = "SSMServiceRole";
const SHARED_LOOP_TIMEOUTS = { connectionMs: 10_000, requestMs: 20_000 };

export interface LocalAws extends AwsClients {
  readonly emulator: Emulator;
  /** Clients on the same emulator with other SDK settings (e.g. no retries for fault tests). */
  clients(options: Pick<AwsClientsOptions, "maxAttempts" | "timeouts">): AwsClients;
  /** A fresh, ACTIVE pool table with a unique name. */
  newTable(): Promise<string>;
  close(): Promise<void>;
}

export async function startLocalAws(): Promise<LocalAws> {
  const emulator = await startEmulator({ port: 0, host: "127.0.0.1", region: TEST_REGION });
  const made: AwsClients[] = [];
  const clients = (options: Pick<AwsClientsOptions, "maxAttempts" | "timeouts">): AwsClients => {
    const c = createAwsClients({
      region: TEST_REGION,
      endpoint: emulator.url,
      credentials: TEST_CREDENTIALS,
      timeouts: SHARED_LOOP_TIMEOUTS,
      ...options,
    });
    made.push(c);
    return c;
  };
  const base = clients({});
  return {
    ...base,
    emulator,
    clients,
    async newTable() {
      const tableName = `pools-${randomUUID().slice(0, 8)}`;
      await ensurePoolTable(base.dynamodb, tableName);
      return tableName;
    },
    async close() {
      for (const c of made) {
        c.dynamodb.destroy();
        c.ssm.destroy();
      }
      await emulator.close();
    },
  };
}
