import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients } from "../aws/clients";
import { ensurePoolTable } from "../aws/dynamodb-table";
import type { Broker } from "../composition";
import type { Clock, Logger, Sleeper } from "../core/ports";
import { explainListenError } from "../http/node-server";
import { createLogger } from "../logging";
import { loadSettings, readRuntimeEnvironment, type Settings } from "../settings";
import { startBrokerServer } from "./server";
import {
  LOCAL_EMULATOR_PORT,
  LOCAL_ENV,
  LOCAL_HYBRID_NODES_ROLE,
  LOCAL_IAM_ROLE,
  LOCAL_REGION,
  LOCAL_TABLE_NAME,
} from "../cli/local-deployment";

/** Names the local stack creates in the emulated AWS (tests import them from here). */
export { LOCAL_HYBRID_NODES_ROLE, LOCAL_IAM_ROLE, LOCAL_REGION, LOCAL_TABLE_NAME };
const LOCAL_TIMEOUTS = { connectionMs: 10_000, requestMs: 20_000 };

export interface LocalStackOptions {
  /** Broker port; 0 picks a free one. Default 8080. */
  readonly brokerPort?: number;
  /** Emulated AWS port; 0 picks a free one. Default 4566. */
  readonly emulatorPort?: number;
  readonly host?: string;
  /** A `{"pools": {...}}` file, as for `npm start -- --config`. */
  readonly configFile?: string;
  /**
   * The environment: BROKER_* and AWS_REGION, validated as everywhere else, on top of what the
   * emulated AWS provides (`npm start` passes process.env; tests pass BROKER_POOLS, …).
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The broker's clock; by default the emulated AWS's, so time travel moves both. */
  readonly clock?: Clock;
  readonly sleeper?: Sleeper;
  readonly logger?: Logger;
}

export interface LocalStack {
  readonly brokerUrl: string;
  readonly emulatorUrl: string;
  readonly emulator: Emulator;
  readonly broker: Broker;
  readonly settings: Settings;
  /** The BROKER_* and AWS_REGION settings it runs with: what an admin CLI needs to reach it. */
  readonly env: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * Local mode is development equipment that tests and the benchmark burst from one address,
 * thousands of connections at once: no per-source rate or connection caps.
 */
export const LOCAL_MODE_LIMITS = {
  BROKER_RATE_LIMIT_PER_SECOND: "0",
  // A tenth of these per source: 20,000 from the one address.
  BROKER_MAX_CONNECTIONS: "200000",
} as const;

/**
 * What the emulated AWS provides (its table, roles and Region), under the caller's settings.
 * Only BROKER_* and AWS_REGION are taken from `env`: the emulated AWS needs no credentials.
 */
function localEnv(options: LocalStackOptions): Record<string, string> {
  const own = Object.entries(options.env ?? {}).filter(
    (entry): entry is [string, string] =>
      entry[1] !== undefined && (entry[0].startsWith("BROKER_") || entry[0] === "AWS_REGION"),
  );
  return {
    ...LOCAL_ENV,
    ...LOCAL_MODE_LIMITS,
    ...Object.fromEntries(own),
    ...(options.configFile !== undefined && { BROKER_POOLS: options.configFile }),
  };
}

/**
 * The whole broker on one machine: the emulated AWS (DynamoDB via dynalite + SSM), the pool
 * table, and the broker's Node server — the same code that runs in Lambda and standalone.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const host = options.host ?? "127.0.0.1";
  // The same settings path as the Lambda and `serve`: bad values fail before any port is bound.
  const env = localEnv(options);
  const settings = loadSettings(env);
  const emulatorPort = options.emulatorPort ?? LOCAL_EMULATOR_PORT;
  const emulator = await startEmulator({ port: emulatorPort, host, region: settings.region }).catch(
    (error: unknown) => {
      throw explainListenError(error, { port: emulatorPort, host, setting: "EMULATOR_PORT" });
    },
  );
  try {
    const clients = createAwsClients({
      region: settings.region,
      endpoint: emulator.url,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
      // The emulated AWS shares this process's event loop with the broker: under a burst a
      // socket waits behind thousands of requests, which real DynamoDB would never make it do.
      timeouts: LOCAL_TIMEOUTS,
    });
    await ensurePoolTable(clients.dynamodb, settings.tableName);
    const logger = options.logger ?? createLogger(readRuntimeEnvironment()).logger;
    const { broker, server } = await startBrokerServer({
      settings,
      clients,
      logger,
      // One "now" for the broker and the emulated AWS: moving the emulator's clock
      // (POST /_emulator/clock) makes "a day later" a day later for both, so the broker sees its
      // pair expire and creates the next one from the same now the emulator checks it against.
      clock: options.clock ?? { now: () => emulator.controls.now().getTime() },
      ...(options.sleeper && { sleeper: options.sleeper }),
      listen: { port: options.brokerPort ?? 8080, host, portSetting: "PORT", ownUrlIsPublic: true },
    });
    return {
      brokerUrl: server.url,
      emulatorUrl: emulator.url,
      emulator,
      broker,
      settings,
      env,
      async close() {
        await server.close("now");
        clients.dynamodb.destroy();
        clients.ssm.destroy();
        await emulator.close();
      },
    };
  } catch (error) {
    await emulator.close();
    throw error;
  }
}
