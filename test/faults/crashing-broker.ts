/**
 * A broker process that SIGKILLs itself at one step of a rotation or standby refill: the real
 * AWS adapters on the emulated AWS, with the step's port call wrapped. Started by
 * fault-suite.test.ts as a child process (node --import tsx); no cleanup runs, the lease stays
 * held, and whatever AWS already did stays done, exactly as when a host dies.
 *
 * Env: FAULT_EMULATOR_URL, FAULT_POOL, FAULT_CRASH_AT (a CrashPoint), FAULT_CRASH_ON_CREATE
 * (which CreateActivation of this process is the fatal one, counted in the order they start: a
 * cold standby pool's rotation starts 1 = its current activation and 2 = its standby at once; the
 * first standby refill, which only a reservation taking slot 1 of that standby asks for, starts
 * 3), FAULT_VENDS (vends made one after the other before waiting for the refills: 1 = the
 * rotation only; registrationLimit + 1 = up to slot 1 of the standby), FAULT_MODE ("crash" |
 * "serve": serve answers vends on a port instead), plus the broker's own BROKER_* settings.
 *
 * Every pair this process hands out is written to stdout as one JSON line before the next step,
 * synchronously, so the parent knows what a dead process handed out (I1 counts those too).
 */
import { writeSync } from "node:fs";
import { createAwsClients } from "../../src/aws/clients";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { createBroker } from "../../src/composition";
import type { ActivationProvider, PoolStateStore, SecretStore } from "../../src/core/ports";
import { Vendor } from "../../src/core/vend";
import { BackgroundRefill } from "../../src/core/standby-refill";
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
  // Set once the fatal CreateActivation has answered, and never reset: the creations of one
  // rotation or refill run in parallel, so a later one must not disarm it.
  let armed = false;
  let fatalActivationId: string | undefined;

  const realActivations = new SsmActivations(clients.ssm);
  const activations: ActivationProvider = {
    create: async (request) => {
      const fatal = ++creates === fatalCreate;
      if (fatal && crashAt === "before-create") die();
      const created = await realActivations.create(request);
      if (fatal) {
        if (crashAt === "after-create") die();
        armed = true;
        fatalActivationId = created.activationId;
      }
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
      if (crashAt === "after-put" && secret.activationId === fatalActivationId) die();
    },
    getMany: (pool, ids) => realSecrets.getMany(pool, ids),
    delete: (pool, id) => realSecrets.delete(pool, id),
  };
  const realStore = new DynamoDbPoolStore(clients.dynamodb, settings.tableName);
  // The commit is sent, and the process dies before it can know whether it landed: 2 ms later,
  // or as soon as it answers if that is sooner (the process never acts on the answer, else a
  // commit that lands quickly would let it finish and survive).
  const dyingCommit = <T>(commit: Promise<T>): Promise<T> => {
    setTimeout(die, 2);
    return commit.then(die, die);
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
    standbyRefill: new BackgroundRefill(logger),
    options: {
      leaseMs: settings.leaseMs,
      rotationWaitMs: settings.rotationWaitMs,
      deployment: settings.deployment,
    },
  });
  const pool = process.env.FAULT_POOL ?? "default";
  const vends = Number(process.env.FAULT_VENDS ?? "1");
  for (let i = 0; i < vends; i++) {
    const pair = (await vendor.vend(pool).catch(() => undefined))?.pair;
    if (pair) {
      const { activationId, activationCode, expiresAt } = pair;
      const line = {
        ActivationId: activationId,
        ActivationCode: activationCode,
        ExpirationDate: new Date(expiresAt).toISOString(),
      };
      writeSync(1, `${JSON.stringify({ pair: line })}\n`);
    }
  }
  await vendor.idle();
  // Still alive: the crash point was never reached (the parent treats that as a failure).
  console.log("survived");
  process.exit(0);
}
