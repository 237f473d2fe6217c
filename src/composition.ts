import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { Clock, Logger, Sleeper } from "./core/ports";
import { Vendor } from "./core/vend";
import { DynamoDbPoolStore } from "./aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "./aws/parameter-store-secrets";
import { SsmActivations } from "./aws/ssm-activations";
import { createHttpHandler, type HttpHandler } from "./http/handler";
import { renderInstallScript } from "./http/agent-scripts.generated";
import { createNodeConfigRoute } from "./http/nodeconfig";
import type { Settings } from "./settings";

export const systemClock: Clock = { now: () => Date.now() };
export const realSleeper: Sleeper = { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };

export interface Broker {
  readonly vendor: Vendor;
  readonly handler: HttpHandler;
}

/** Wires the core to the AWS adapters; shared by the Lambda, the Node server and the local stack. */
export function createBroker(deps: {
  settings: Settings;
  clients: { dynamodb: DynamoDBClient; ssm: SSMClient };
  logger: Logger;
  clock?: Clock;
  sleeper?: Sleeper;
  /** Where standby refills run; omitted = in this process, in the background (see Vendor). */
  requestStandbyRefill?: (pool: string) => Promise<void>;
}): Broker {
  const { settings, clients, logger } = deps;
  const vendor = new Vendor({
    pools: settings.pools,
    store: new DynamoDbPoolStore(clients.dynamodb, settings.tableName),
    activations: new SsmActivations(clients.ssm, { deployment: settings.deployment }),
    secrets: new ParameterStoreSecrets(clients.ssm, {
      prefix: settings.parameterPrefix,
      kmsKeyId: settings.kmsKeyId,
    }),
    clock: deps.clock ?? systemClock,
    sleeper: deps.sleeper ?? realSleeper,
    logger,
    ...(deps.requestStandbyRefill && { requestStandbyRefill: deps.requestStandbyRefill }),
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
    renderInstallScript,
    nodeConfig,
  });
  return { vendor, handler };
}
