import { DescribeActivationsCommand, GetParametersByPathCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import { createAwsClients } from "../../src/aws/clients";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import type { ActivationProvider, SecretStore } from "../../src/core/ports";
import { Vendor } from "../../src/core/vend";
import { BackgroundRefill } from "../../src/core/standby-refill";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";
import { CapturingLogger } from "../support/fakes";
import { aLocalStack, registerNode } from "../support/local";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const never = () => new Promise<never>(() => {});

/**
 * A rotation of a cold standby pool: the current activation and one standby (depth 1), created at
 * once on the one lease and committed together.
 */
const ROTATION_SIZE = 2;

/**
 * A second broker process on the same table whose rotation "dies" at a chosen step: the promise
 * never settles, exactly as if the process had been killed there (no cleanup, lease left held).
 * The rotation makes its activations in parallel, so it is dead once every one of them has
 * reached the step (`dead` resolves then), not at the first.
 */
function aDyingBroker(s: Stack, dieAfter: "CreateActivation" | "PutParameter") {
  const clients = createAwsClients({
    region: s.settings.region,
    endpoint: s.emulatorUrl,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const realActivations = new SsmActivations(clients.ssm);
  const realSecrets = new ParameterStoreSecrets(clients.ssm, {
    prefix: s.settings.parameterPrefix,
    kmsKeyId: s.settings.kmsKeyId,
  });
  let reached = 0;
  let resolveDead!: () => void;
  const dead = new Promise<void>((resolve) => (resolveDead = resolve));
  const died = () => {
    if (++reached === ROTATION_SIZE) resolveDead();
  };
  const activations: ActivationProvider = {
    create: async (request) => {
      const created = await realActivations.create(request);
      if (dieAfter === "CreateActivation") {
        died();
        return never();
      }
      return created;
    },
    delete: (id) => realActivations.delete(id),
    describe: (id) => realActivations.describe(id),
  };
  const secrets: SecretStore = {
    put: async (secret) => {
      await realSecrets.put(secret);
      died();
      return never();
    },
    getMany: (pool, ids) => realSecrets.getMany(pool, ids),
    delete: (pool, id) => realSecrets.delete(pool, id),
  };
  const vendor = new Vendor({
    pools: s.settings.pools,
    store: new DynamoDbPoolStore(clients.dynamodb, s.settings.tableName),
    activations,
    secrets,
    clock: s.clock,
    sleeper: s.clock,
    logger: new CapturingLogger(),
    standbyRefill: new BackgroundRefill(new CapturingLogger()),
    options: { leaseMs: s.settings.leaseMs, rotationWaitMs: 0, deployment: s.settings.deployment },
  });
  void vendor.vend("default");
  return { dead, ssm: clients.ssm, dynamodb: clients.dynamodb };
}

async function describeActivations(ssm: SSMClient) {
  return (await ssm.send(new DescribeActivationsCommand({}))).ActivationList ?? [];
}

const tag = (tags: { Key?: string; Value?: string }[] | undefined, key: string) =>
  tags?.find((t) => t.Key === key)?.Value;

describe.each(["CreateActivation", "PutParameter"] as const)(
  "a rotation holder that dies after %s",
  (step) => {
    it("blocks others only until its lease lapses; the orphan is tagged for the janitor (I3, I5)", async () => {
      stack = await aLocalStack({ BROKER_ROTATION_WAIT_SECONDS: "0.3", BROKER_LEASE_SECONDS: "30" });
      const dying = aDyingBroker(stack, step);
      await dying.dead;

      const blocked = await stack.get("/");
      expect(blocked.status).toBe(503);
      expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // The dead holder's current activation and its standby; the blocked request created none.
      expect(stack.emulator.controls.counters()["ssm:CreateActivation"]).toBe(ROTATION_SIZE);

      stack.moveClocks(31); // past the dead holder's lease deadline
      const res = await stack.get("/");
      expect(res.status).toBe(200);
      const pair = (await res.json()) as { ActivationId: string; ActivationCode: string };
      expect((await registerNode(stack.emulatorUrl, pair)).status).toBe(200);

      // Two rotations' worth: the survivor's current and standby, and the dead holder's two orphans.
      const all = await describeActivations(dying.ssm);
      expect(all).toHaveLength(2 * ROTATION_SIZE);
      const state = await new DynamoDbPoolStore(dying.dynamodb, stack.settings.tableName).read("default");
      const [current, standby] = state?.links ?? [];
      expect(current?.activationId).toBe(pair.ActivationId);
      expect(standby).toBeDefined();
      const live = new Set<string | undefined>([current?.activationId, standby?.activationId]);
      const orphans = all.filter((a) => !live.has(a.ActivationId));
      expect(orphans).toHaveLength(ROTATION_SIZE);
      // The janitor's rule: tagged for this pool with a generation the row has not passed (the
      // dead rotation's were 1 and 2, the row is at 1), yet not an activation the row names.
      for (const orphan of orphans) {
        expect(tag(orphan.Tags, TAG_DEPLOYMENT)).toBe("local");
        expect(tag(orphan.Tags, TAG_POOL)).toBe("default");
        expect(Number(tag(orphan.Tags, TAG_GENERATION))).toBeGreaterThanOrEqual(state!.generation);
      }
      expect(orphans.map((o) => tag(o.Tags, TAG_GENERATION)).sort()).toEqual(["1", "2"]);

      const params = await dying.ssm.send(
        new GetParametersByPathCommand({ Path: stack.settings.parameterPrefix, Recursive: true }),
      );
      const names = (params.Parameters ?? []).map((p) => p.Name);
      expect(names).toContain(`${stack.settings.parameterPrefix}/default/${pair.ActivationId}`);
      expect(names).toContain(`${stack.settings.parameterPrefix}/default/${standby?.activationId}`);
      for (const orphan of orphans) {
        expect(names.includes(`${stack.settings.parameterPrefix}/default/${orphan.ActivationId}`)).toBe(
          step === "PutParameter",
        );
      }
    });
  },
);

describe("SSM throttling", () => {
  it("answers 503 with Retry-After, leaves the pool state intact, and the next request succeeds", async () => {
    stack = await aLocalStack();
    stack.emulator.controls.injectFault({ service: "ssm", operation: "CreateActivation", kind: "throttle" });
    const res = await stack.get("/");
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("Throttled");
    expect(stack.emulator.controls.activations()).toHaveLength(0);

    stack.emulator.controls.clearFaults();
    const next = await stack.get("/");
    expect(next.status).toBe(200);
    // The rotation the throttling refused, in full: the current activation and its standby.
    expect(stack.emulator.controls.activations()).toHaveLength(2);
  });
});

describe("expiry", () => {
  it("rotates once the emulator clock passes expiry minus the safety margin (I2)", async () => {
    // Without a standby: this pins the on-request rotation, the fallback when none is ready.
    stack = await aLocalStack({
      BROKER_POOLS: JSON.stringify({
        pools: { default: { expirationHours: 2, safetyMarginMinutes: 30, standby: false } },
      }),
    });
    const first = (await (await stack.get("/")).json()) as { ActivationId: string; ExpirationDate: string };
    const expiresAt = Date.parse(first.ExpirationDate);

    stack.moveClocks(Math.floor((expiresAt - Date.now() - 30 * 60_000) / 1000) - 60); // a minute before the margin
    expect(((await (await stack.get("/")).json()) as { ActivationId: string }).ActivationId).toBe(
      first.ActivationId,
    );

    stack.moveClocks(Math.ceil((expiresAt - Date.now() - 30 * 60_000) / 1000) + 1); // just past it
    const second = (await (await stack.get("/")).json()) as { ActivationId: string; ExpirationDate: string };
    expect(second.ActivationId).not.toBe(first.ActivationId);
    expect(Date.parse(second.ExpirationDate)).toBeGreaterThan(stack.clock.now() + 30 * 60_000);
    expect(stack.emulator.controls.counters()["ssm:CreateActivation"]).toBe(2);
  });
});
