import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { Clock, Logger, Sleeper } from "./core/ports";
import { reconcilePools, type ReconcileOutcome } from "./core/reconcile";
import { RefusedPairs } from "./core/refused-pairs";
import { BackgroundRefill, type StandbyRefill } from "./core/standby-refill";
import { Vendor } from "./core/vend";
import { DynamoDbPoolStore } from "./aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "./aws/parameter-store-secrets";
import { SsmActivations } from "./aws/ssm-activations";
import { DynamoDbPoolInventory, type PageProgress } from "./aws/dynamodb-pool-inventory";
import { ParameterInventory, SsmActivationInventory, SsmNodeInventory } from "./aws/ssm-inventory";
import { Admin } from "./core/admin";
import { Janitor } from "./core/janitor";
import type { Metrics } from "./core/metrics";
import { createHttpHandler, type HttpHandler } from "./http/handler";
import { agentScripts } from "./http/agent-scripts";
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

export interface RequestPathDeps {
  readonly settings: Settings;
  readonly clients: { dynamodb: DynamoDBClient; ssm: SSMClient };
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly clock?: Clock;
  readonly sleeper?: Sleeper;
  /** Where standby refills run; omitted = in this process, in the background (BackgroundRefill). */
  readonly standbyRefill?: StandbyRefill;
}

/**
 * The request path's core on its AWS adapters: the HTTP app is built on it, and the admin CLI's
 * `get`, `rotate`, `revoke` and `status` use it directly (they hand out and rotate as a vend does).
 */
export function createVendor(deps: RequestPathDeps): Vendor {
  const { settings, clients } = deps;
  return vendorOn(
    new DynamoDbPoolStore(clients.dynamodb, settings.tableName),
    new SsmActivations(clients.ssm),
    deps,
  );
}

function vendorOn(store: DynamoDbPoolStore, activations: SsmActivations, deps: RequestPathDeps): Vendor {
  const { settings, clients, logger } = deps;
  return new Vendor({
    pools: settings.pools,
    store,
    activations,
    secrets: secretsFor(settings, clients.ssm),
    clock: deps.clock ?? systemClock,
    sleeper: deps.sleeper ?? realSleeper,
    logger,
    ...(deps.metrics && { metrics: deps.metrics }),
    standbyRefill: deps.standbyRefill ?? new BackgroundRefill(logger),
    options: {
      leaseMs: settings.leaseMs,
      rotationWaitMs: settings.rotationWaitMs,
      deployment: settings.deployment,
    },
  });
}

/** The HTTP app on the request path's core; shared by the Lambda, the Node server and the local stack. */
export function createBroker(deps: RequestPathDeps): Broker {
  const { settings, clients, logger } = deps;
  const store = new DynamoDbPoolStore(clients.dynamodb, settings.tableName);
  const activations = new SsmActivations(clients.ssm);
  const vendor = vendorOn(store, activations, deps);
  // The retire write, shared by the refused-pair check and the periodic slot-theft check.
  const retirer = new DynamoDbPoolInventory(clients.dynamodb, settings.tableName);
  const refusedPairs = new RefusedPairs({
    store,
    pools: retirer,
    activations,
    clock: deps.clock ?? systemClock,
    logger,
    metrics: deps.metrics,
  });
  const nodeConfig = createNodeConfigRoute({ vendor, pools: settings.pools, logger, refusedPairs });
  const handler = createHttpHandler({
    vendor,
    region: settings.region,
    logger,
    ...(deps.metrics && { metrics: deps.metrics }),
    renderInstallScript: installScriptRenderer(agentScripts()),
    nodeConfig,
    refusedPairs,
  });
  const reconcile = () =>
    reconcilePools(
      { store, pools: retirer, activations, logger, ...(deps.metrics && { metrics: deps.metrics }) },
      [...settings.pools.keys()],
    );
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

function secretsFor(settings: Settings, ssm: SSMClient): ParameterStoreSecrets {
  return new ParameterStoreSecrets(ssm, {
    prefix: settings.parameterPrefix,
    kmsKeyId: settings.kmsKeyId,
    deployment: settings.deployment,
  });
}

export interface Operations {
  readonly janitor: Janitor;
  /** The admin use cases; `rotate` and `get` go through `vendor`, the request path's own code. */
  admin(vendor: Vendor): Admin;
  readonly inventory: {
    readonly pools: DynamoDbPoolInventory;
    readonly activations: SsmActivationInventory;
    readonly secrets: ParameterInventory;
    readonly nodes: SsmNodeInventory;
  };
}

/** Wires the janitor to its inventory adapters: the scheduled Lambda and the admin CLI. */
export function createOperations(deps: {
  settings: Settings;
  clients: { dynamodb: DynamoDBClient; ssm: SSMClient };
  logger: Logger;
  metrics?: Metrics;
  clock?: Clock;
  onPage?: PageProgress;
}): Operations {
  const { settings, clients, onPage } = deps;
  const inventory = {
    pools: new DynamoDbPoolInventory(clients.dynamodb, settings.tableName, onPage),
    activations: new SsmActivationInventory(clients.ssm, onPage),
    secrets: new ParameterInventory(
      clients.ssm,
      secretsFor(settings, clients.ssm),
      settings.parameterPrefix,
      onPage,
    ),
    nodes: new SsmNodeInventory(clients.ssm, settings.deployment, onPage),
  };
  const janitor = new Janitor({
    pools: settings.pools,
    poolInventory: inventory.pools,
    activations: inventory.activations,
    secrets: inventory.secrets,
    nodes: inventory.nodes,
    clock: deps.clock ?? systemClock,
    logger: deps.logger,
    ...(deps.metrics && { metrics: deps.metrics }),
    options: { deployment: settings.deployment, leaseMs: settings.leaseMs },
  });
  const admin = (vendor: Vendor) =>
    new Admin({
      pools: settings.pools,
      poolInventory: inventory.pools,
      activations: inventory.activations,
      secrets: inventory.secrets,
      nodes: inventory.nodes,
      clock: deps.clock ?? systemClock,
      logger: deps.logger,
      deployment: settings.deployment,
      vendor,
    });
  return { janitor, inventory, admin };
}
