/**
 * A broker process that SIGKILLs itself at one step of a rotation or standby refill: the real
 * AWS adapters on the emulated AWS, with the step's port call wrapped. Started by
 * fault-suite.test.ts as a child process (node --import tsx); no cleanup runs, the lease stays
 * held, and whatever AWS already did stays done, exactly as when a host dies.
 *
 * Env: FAULT_EMULATOR_URL, FAULT_POOL, FAULT_CRASH_AT (a CrashPoint), FAULT_CRASH_ON_CREATE
 * (which CreateActivation of this process is the fatal one: 1 = the rotation, 2 = the first
 * standby refill), FAULT_MODE ("crash" | "serve": serve answers vends on a port instead), plus
 * the broker's own BROKER_* settings.
 */
import { createAwsClients } from "../../src/aws/clients";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { createBroker } from "../../src/composition";
import type { ActivationProvider, PoolStateStore, SecretStore } from "../../src/core/ports";
import { Vendor } from "../../src/core/vend";
import { createNodeServer, listen } from "../../src/http/node-server";
import { loadSettings } from "../../src/settings";
import { CapturingLogger } from "../support/fakes";

export type CrashPoint = "before-create" | "after-create" | "after-put" | "during-commit";

const settings = loadSettings(process.env);
const clients = createAwsClients({
  region: settings.region,
  endpoint: process.env.FAULT_EMULATOR_URL,
  credentials: { accessKeyId: "fault", secretAccessKey: "fault" },
  timeouts: { connectionMs: 10_000, requestMs: 20_000 },
});
const logger = new CapturingLogger();

if (process.env.FAULT_MODE === "serve") {
  // A second, healthy broker process on the same table (two replicas).
  const broker = createBroker({ settings, clients, logger });
  const { port } = await listen(createNodeServer(broker.handler, { logger }), 0, "127.0.0.1");
  process.send?.({ port });
} else {
  const die = (): never => {
    process.kill(process.pid, "SIGKILL");
    throw new Error("unreachable");
  };
  const crashAt = process.env.FAULT_CRASH_AT as CrashPoint;
  const fatalCreate = Number(process.env.FAULT_CRASH_ON_CREATE ?? "1");
  let creates = 0;
  let armed = false;

  const realActivations = new SsmActivations(clients.ssm);
  const activations: ActivationProvider = {
    create: async (request) => {
      armed = ++creates === fatalCreate;
      if (armed && crashAt === "before-create") die();
      const created = await realActivations.create(request);
      if (armed && crashAt === "after-create") die();
      return created;
    },
    delete: (id) => realActivations.delete(id),
    describe: (id) => realActivations.describe(id),
  };
  const realSecrets = new ParameterStoreSecrets(clients.ssm, {
    prefix: settings.parameterPrefix,
    kmsKeyId: settings.kmsKeyId,
  });
  const secrets: SecretStore = {
    put: async (secret) => {
      await realSecrets.put(secret);
      if (armed && crashAt === "after-put") die();
    },
    getMany: (pool, ids) => realSecrets.getMany(pool, ids),
    delete: (pool, id) => realSecrets.delete(pool, id),
  };
  const realStore = new DynamoDbPoolStore(clients.dynamodb, settings.tableName);
  // The commit is sent, and the process dies before it can know whether it landed.
  const dyingCommit = <T>(commit: Promise<T>): Promise<T> => {
    setTimeout(die, 2);
    return commit;
  };
  const store: PoolStateStore = Object.assign(Object.create(realStore) as PoolStateStore, {
    commitRotation: (...args: Parameters<PoolStateStore["commitRotation"]>) => {
      const commit = realStore.commitRotation(...args);
      return armed && crashAt === "during-commit" ? dyingCommit(commit) : commit;
    },
    commitRefill: (...args: Parameters<PoolStateStore["commitRefill"]>) => {
      const commit = realStore.commitRefill(...args);
      return armed && crashAt === "during-commit" ? dyingCommit(commit) : commit;
    },
  });
  const vendor = new Vendor({
    pools: settings.pools,
    store,
    activations,
    secrets,
    clock: { now: () => Date.now() },
    sleeper: { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    logger,
    options: {
      leaseMs: settings.leaseMs,
      rotationWaitMs: settings.rotationWaitMs,
      deployment: settings.deployment,
    },
  });
  const pool = process.env.FAULT_POOL ?? "default";
  await vendor.vend(pool).catch(() => undefined);
  await vendor.idle();
  // Still alive: the crash point was never reached (the parent treats that as a failure).
  console.log("survived");
  process.exit(0);
}
