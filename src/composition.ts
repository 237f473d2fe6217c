import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { Clock, Logger, Sleeper } from "./core/ports";
import { reconcilePools, type ReconcileOutcome } from "./core/reconcile";
import { Vendor } from "./core/vend";
import { DynamoDbPoolStore } from "./aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "./aws/parameter-store-secrets";
import { SsmActivations } from "./aws/ssm-activations";
import { createHttpHandler, type HttpHandler } from "./http/handler";
import { INSTALL_PS1, INSTALL_SH } from "./http/agent-scripts.generated";
import { installScriptRenderer } from "./http/install-scripts";
import { createNodeConfigRoute } from "./http/nodeconfig";
import type { Settings } from "./settings";

export const systemClock: Clock = { now: () => Date.now() };
export const realSleeper: Sleeper = { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };

export interface Broker {
  readonly vendor: Vendor;
  readonly handler: HttpHandler;
  /** The slot-theft check of every configured pool (src/core/reconcile.ts); never per vend. */
  reconcile(): Promise<ReconcileOutcome[]>;
}

/** Wires the core to the AWS adapters; shared by the Lambda, the Node server and the local stack. */
export function createBroker(deps: {
  settings: Settings;
  clients: { dynamodb: DynamoDBClient; ssm: SSMClient };
  logger: Logger;
  clock?: Clock;
  sleeper?: Sleeper;
}): Broker {
  const { settings, clients, logger } = deps;
  const store = new DynamoDbPoolStore(clients.dynamodb, settings.tableName);
  const activations = new SsmActivations(clients.ssm, { deployment: settings.deployment });
  const clock = deps.clock ?? systemClock;
  const vendor = new Vendor({
    pools: settings.pools,
    store,
    activations,
    secrets: new ParameterStoreSecrets(clients.ssm, {
      prefix: settings.parameterPrefix,
      kmsKeyId: settings.kmsKeyId,
    }),
    clock,
    sleeper: deps.sleeper ?? realSleeper,
    logger,
    options: {
      leaseMs: settings.leaseMs,
      rotationWaitMs: settings.rotationWaitMs,
      deployment: settings.deployment,
    },
  });
  const nodeConfig = createNodeConfigRoute({ vendor, pools: settings.pools, logger });
  const handler = createHttpHandler({
    vendor,
    region: settings.region,
    logger,
    renderInstallScript: installScriptRenderer({ sh: INSTALL_SH, ps1: INSTALL_PS1 }),
    nodeConfig,
  });
  const reconcile = () => reconcilePools({ store, activations, clock, logger }, [...settings.pools.keys()]);
  return { vendor, handler, reconcile };
}

/**
 * Runs the slot-theft check every `intervalMs` in a long-running process (standalone and local
 * mode; on AWS the janitor does it). Returns a stop function. Runs never overlap.
 */
export function startReconcileTimer(broker: Broker, intervalMs: number, logger: Logger): () => void {
  if (intervalMs <= 0) return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    broker
      .reconcile()
      .catch((error: unknown) =>
        logger.warn("slot-theft check failed", { error: error instanceof Error ? error.name : typeof error }),
      )
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
