import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients } from "../aws/clients";
import { ensurePoolTable } from "../aws/dynamodb-table";
import { createBroker, startReconcileTimer, type Broker } from "../composition";
import type { Clock, Logger, Sleeper } from "../core/ports";
import { createNodeServer, explainListenError, listen, type NodeServerOptions } from "../http/node-server";
import { createLogger } from "../logging";
import { loadSettings, type Settings } from "../settings";

/** Names the local stack creates in the emulated AWS. */
export const LOCAL_TABLE_NAME = "activation-broker-local";
export const LOCAL_IAM_ROLE = "SSMServiceRole";
export const LOCAL_HYBRID_NODES_ROLE = "AmazonEKSHybridNodesRole";
export const LOCAL_REGION = "us-east-1";
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
  close(): Promise<void>;
}

/**
 * What the emulated AWS provides (its table, roles and Region), under the caller's settings.
 * Only BROKER_* and AWS_REGION are taken from `env`: the emulated AWS needs no credentials.
 */
function localEnv(options: LocalStackOptions): NodeJS.ProcessEnv {
  const own = Object.entries(options.env ?? {}).filter(
    ([name, value]) => value !== undefined && (name.startsWith("BROKER_") || name === "AWS_REGION"),
  );
  return {
    AWS_REGION: LOCAL_REGION,
    BROKER_TABLE_NAME: LOCAL_TABLE_NAME,
    BROKER_DEFAULT_IAM_ROLE: LOCAL_IAM_ROLE,
    BROKER_HYBRID_NODES_ROLE: LOCAL_HYBRID_NODES_ROLE,
    BROKER_DEPLOYMENT: "local",
    // Local mode is development equipment that tests and the benchmark burst from one address,
    // thousands of connections at once.
    BROKER_RATE_LIMIT_PER_SECOND: "0",
    BROKER_MAX_CONNECTIONS: "20000",
    BROKER_MAX_CONNECTIONS_PER_SOURCE: "20000",
    ...Object.fromEntries(own),
    ...(options.configFile !== undefined && { BROKER_CONFIG_FILE: options.configFile }),
  };
}

/**
 * The whole broker on one machine: the emulated AWS (DynamoDB via dynalite + SSM), the pool
 * table, and the broker's Node server — the same code that runs in Lambda and standalone.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const host = options.host ?? "127.0.0.1";
  // The same settings path as the Lambda and `serve`: bad values fail before any port is bound.
  const settings = loadSettings(localEnv(options));
  const emulatorPort = options.emulatorPort ?? 4566;
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
    const logger = options.logger ?? createLogger().logger;
    const broker = createBroker({
      settings,
      clients,
      logger,
      // One "now" for the broker and the emulated AWS: moving the emulator's clock
      // (POST /_emulator/clock) makes "a day later" a day later for both, so the broker sees its
      // pair expire and creates the next one from the same now the emulator checks it against.
      clock: options.clock ?? { now: () => emulator.controls.now().getTime() },
      ...(options.sleeper && { sleeper: options.sleeper }),
    });
    const serverOptions: NodeServerOptions = { logger, limits: settings.server };
    const server = createNodeServer(broker.handler, serverOptions);
    const { port } = await listen(server, options.brokerPort ?? 8080, host);
    const brokerUrl = `http://${host}:${port}`;
    // On this machine the broker knows its own URL, so the quick start's install scripts work
    // without BROKER_PUBLIC_URL; a caller's Host header still never chooses it.
    serverOptions.publicUrl = settings.publicUrl ?? brokerUrl;
    const stopReconciling = startReconcileTimer(broker, settings.reconcileIntervalMs, logger);
    return {
      brokerUrl,
      emulatorUrl: emulator.url,
      emulator,
      broker,
      settings,
      async close() {
        stopReconciling();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
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
