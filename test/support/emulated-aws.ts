/**
 * The one emulated AWS for tests: a private emulator (emulator/) on an ephemeral port, and the
 * clients that talk to it. Two kinds of client, for two kinds of test:
 *
 * - `dynamodb`, `ssm`, `clients()`: built by the broker's own createAwsClients, as production
 *   builds them — for the adapters, contracts and entry points;
 * - `rawSsm()`, `rawDynamoDb()`: plain SDK clients with no retries — for the emulator's own
 *   tests, which must see the emulator's answer and nothing of the broker in between.
 *
 * One difference from production: the emulator runs in the test's own event loop, so while it
 * serves a burst (300 racing reserves) the client's connect/response events wait behind it, and
 * production's 1 s connect timeout fires on a loaded CI machine although nothing is wrong. Tests of
 * the timeouts themselves (clients.test.ts) pass `timeouts: undefined` to get production's values.
 */
import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SSMClient } from "@aws-sdk/client-ssm";
import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients, type AwsClients, type AwsClientsOptions } from "../../src/aws/clients";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";

export const TEST_REGION = "us-east-1";
export const TEST_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;
export const TEST_ROLE = "SSMServiceRole";
const SHARED_LOOP_TIMEOUTS = { connectionMs: 10_000, requestMs: 20_000 };

export interface EmulatedAws extends AwsClients {
  readonly emulator: Emulator;
  readonly url: string;
  readonly region: string;
  /** Broker clients on the same emulator with other SDK settings (e.g. no retries). */
  clients(options: Pick<AwsClientsOptions, "maxAttempts" | "timeouts">): AwsClients;
  /** A plain SDK client; maxAttempts 1 so a test expecting an error sees the emulator's answer. */
  rawSsm(maxAttempts?: number): SSMClient;
  rawDynamoDb(maxAttempts?: number): DynamoDBClient;
  /** A fresh, ACTIVE pool table with a unique name (or the given one). */
  newTable(name?: string): Promise<string>;
  /** Destroys every client made here, then stops the emulator. */
  close(): Promise<void>;
}

export async function startEmulatedAws(options: { region?: string } = {}): Promise<EmulatedAws> {
  const region = options.region ?? TEST_REGION;
  const emulator = await startEmulator({ port: 0, host: "127.0.0.1", region });
  const made: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(client: T): T => (made.push(client), client);
  const clients = (settings: Pick<AwsClientsOptions, "maxAttempts" | "timeouts">): AwsClients => {
    const c = createAwsClients({
      region,
      endpoint: emulator.url,
      credentials: TEST_CREDENTIALS,
      timeouts: SHARED_LOOP_TIMEOUTS,
      ...settings,
    });
    track(c.dynamodb);
    track(c.ssm);
    return c;
  };
  const raw = { endpoint: emulator.url, region, credentials: TEST_CREDENTIALS };
  const base = clients({});
  return {
    ...base,
    emulator,
    url: emulator.url,
    region,
    clients,
    rawSsm: (maxAttempts = 1) => track(new SSMClient({ ...raw, maxAttempts })),
    rawDynamoDb: (maxAttempts = 1) => track(new DynamoDBClient({ ...raw, maxAttempts })),
    async newTable(name = `pools-${randomUUID().slice(0, 8)}`) {
      await ensurePoolTable(base.dynamodb, name);
      return name;
    },
    async close() {
      for (const client of made) client.destroy();
      await emulator.close();
    },
  };
}

/** One command as an adapter sent it: the command's class name and its input. */
export interface SentCommand {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

/**
 * The same client, recording every command an adapter sends through it. For the parts of a
 * request the emulator cannot tell apart (dynalite's reads are always consistent, and a filter
 * that would only matter past its page size): the test asserts what the adapter asks AWS for.
 */
export function recordingSends<C extends { send: (...args: never[]) => Promise<unknown> }>(
  client: C,
): { client: C; sent: SentCommand[] } {
  const sent: SentCommand[] = [];
  const recording = Object.create(client) as C;
  const send = client.send.bind(client) as (command: object, ...rest: unknown[]) => Promise<unknown>;
  Object.assign(recording, {
    send: (command: { input: Record<string, unknown> }, ...rest: unknown[]) => {
      sent.push({ command: command.constructor.name, input: command.input });
      return send(command, ...rest);
    },
  });
  return { client: recording, sent };
}
