import { randomUUID } from "node:crypto";
import {
  CreateActivationCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAwsClients } from "../../src/aws/clients";
import { createOperations, type Operations } from "../../src/composition";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";
import { CapturingLogger } from "../support/fakes";
import { aLocalStack, pools, registerNode } from "../support/local";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
interface Pair {
  ActivationId: string;
  ActivationCode: string;
}

const HOUR_S = 3600;

/**
 * The janitor on real adapters against the emulated AWS, over a mixture of every kind of
 * activation and parameter. Each kind is made the way it arises in production (vends, rotations,
 * a rotation that never committed, a revoke whose delete failed, other deployments' resources).
 */
describe("janitor: cleanup over a mixture of activations and parameters", () => {
  let stack: Stack;
  let ssm: SSMClient;
  let ops: Operations;
  const ids: Record<string, string> = {};
  const prefix = "/activation-broker";

  const vend = async (pool: string): Promise<Pair> => {
    const res = await stack.get(`/activations/${pool}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Pair;
  };
  const parameterNames = async () => {
    const names: string[] = [];
    for (const path of [prefix, "/other"]) {
      let NextToken: string | undefined;
      do {
        const page = await ssm.send(
          new GetParametersByPathCommand({ Path: path, Recursive: true, NextToken }),
        );
        names.push(...(page.Parameters ?? []).map((p) => p.Name!));
        NextToken = page.NextToken;
      } while (NextToken);
    }
    return names.sort();
  };
  const activationIds = () =>
    stack.emulator.controls
      .activations()
      .map((a) => a.activationId)
      .sort();
  const putParameter = (Name: string) =>
    ssm.send(new PutParameterCommand({ Name, Value: "not-a-code", Type: "SecureString" }));

  beforeAll(async () => {
    stack = await aLocalStack({
      // No standby (I9) here: the scenario builds each state by hand; the standby's own state is
      // checked in test/core/janitor-standby.test.ts.
      BROKER_POOLS: pools({
        web: { registrationLimit: 2, standby: false },
        db: { standby: false },
        short: { expirationHours: 1, safetyMarginMinutes: 10, standby: false },
      }),
    });
    ssm = createAwsClients({
      region: stack.settings.region,
      endpoint: stack.emulatorUrl,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }).ssm;
    ops = createOperations({
      settings: stack.settings,
      clients: {
        ssm,
        dynamodb: createAwsClients({
          region: stack.settings.region,
          endpoint: stack.emulatorUrl,
          credentials: { accessKeyId: "l", secretAccessKey: "l" },
        }).dynamodb,
      },
      logger: new CapturingLogger(),
      clock: stack.clock,
    });

    // web: A1 fully registered (spent, every slot used), A2 spent with free slots, A3 current.
    const a1 = await vend("web");
    await vend("web");
    ids.a1 = a1.ActivationId;
    for (let i = 0; i < 2; i++) expect((await registerNode(stack.emulatorUrl, a1)).status).toBe(200);
    ids.a2 = (await vend("web")).ActivationId;
    await vend("web");
    ids.a3 = (await vend("web")).ActivationId;
    expect(new Set([ids.a1, ids.a2, ids.a3]).size).toBe(3);

    // short: S1, current now, expired (and superseded) after the clocks move.
    ids.s1 = (await vend("short")).ActivationId;

    // A rotation that died before its commit: tags identical to web's current activation.
    const orphan = await ssm.send(
      new CreateActivationCommand({
        IamRole: "SSMServiceRole",
        RegistrationLimit: 2,
        Tags: [
          { Key: TAG_DEPLOYMENT, Value: "local" },
          { Key: TAG_POOL, Value: "web" },
          { Key: TAG_GENERATION, Value: "3" },
        ],
      }),
    );
    ids.orphan = orphan.ActivationId!;
    await putParameter(`${prefix}/web/${ids.orphan}`);

    // Other people's: another deployment's activation (its parameter under our prefix by mistake),
    // an untagged one, a parameter outside our naming, one outside our prefix.
    const foreign = await ssm.send(
      new CreateActivationCommand({
        IamRole: "SSMServiceRole",
        Tags: [
          { Key: TAG_DEPLOYMENT, Value: "someone-else" },
          { Key: TAG_POOL, Value: "web" },
          { Key: TAG_GENERATION, Value: "1" },
        ],
      }),
    );
    ids.foreign = foreign.ActivationId!;
    ids.untagged = (await ssm.send(new CreateActivationCommand({ IamRole: "SSMServiceRole" }))).ActivationId!;
    await putParameter(`${prefix}/web/${ids.foreign}`);
    await putParameter(`${prefix}/notes`);
    await putParameter(`/other/web/${randomUUID()}`);

    // A code whose activation is gone (a revoke or discard that deleted only the activation).
    ids.dangling = randomUUID();
    await putParameter(`${prefix}/web/${ids.dangling}`);

    // db: D1 revoked, but DeleteActivation failed, so the activation is left for the janitor.
    ids.d1 = (await vend("db")).ActivationId;
    const admin = ops.admin(stack.broker.vendor);
    stack.emulator.controls.injectFault({
      service: "ssm",
      operation: "DeleteActivation",
      kind: "error",
      count: 3,
    });
    await expect(admin.revoke("db")).rejects.toThrow();
    stack.emulator.controls.clearFaults();

    // Two hours later: S1 expired; short rotates to S2.
    stack.moveClocks(2 * HOUR_S);
    ids.s2 = (await vend("short")).ActivationId;
  });

  afterAll(async () => {
    ssm?.destroy();
    await stack?.close();
  });

  it("classifies every activation and parameter", async () => {
    const survey = await ops.janitor.survey();
    const stateOf = Object.fromEntries(
      survey.activations.map((a) => [a.activation.activationId, [a.state, a.action]]),
    );
    expect(stateOf).toEqual({
      [ids.a1!]: ["spent", "delete"],
      [ids.a2!]: ["spent", "keep"],
      [ids.a3!]: ["current", "keep"],
      [ids.s1!]: ["expired", "delete"],
      [ids.s2!]: ["current", "keep"],
      [ids.orphan!]: ["orphaned", "delete"],
      [ids.foreign!]: ["foreign", "keep"],
      [ids.untagged!]: ["foreign", "keep"],
      [ids.d1!]: ["revoked", "delete"],
    });
  });

  it("a dry run reports the deletions and changes nothing", async () => {
    const before = { activations: activationIds(), parameters: await parameterNames() };
    const report = await ops.janitor.cleanup({ apply: false });
    expect(report.deletedActivations.map((a) => a.activation.activationId).sort()).toEqual(
      [ids.a1, ids.s1, ids.orphan, ids.d1].sort(),
    );
    expect(activationIds()).toEqual(before.activations);
    expect(await parameterNames()).toEqual(before.parameters);
  });

  it("deletes exactly the right ones, and a second run is a no-op", async () => {
    const report = await ops.janitor.cleanup({ apply: true });
    expect(report.failures).toEqual([]);
    expect(activationIds()).toEqual([ids.a2, ids.a3, ids.s2, ids.foreign, ids.untagged].sort());
    expect(await parameterNames()).toEqual(
      [
        `${prefix}/notes`,
        `${prefix}/short/${ids.s2}`,
        `${prefix}/web/${ids.a3}`,
        `${prefix}/web/${ids.foreign}`,
        expect.stringMatching(/^\/other\/web\//),
      ].sort((a, b) => String(a).localeCompare(String(b))),
    );
    // Spent and expired activations' codes are already gone: each rotation deletes the outgoing
    // activation's code when it commits. What is left for the janitor is what no rotation saw.
    expect(report.deletedParameters.map((p) => p.state).sort()).toEqual(["dangling", "orphaned"]);

    const again = await ops.janitor.cleanup({ apply: true });
    expect(again.deletedActivations).toEqual([]);
    expect(again.deletedParameters).toEqual([]);
    expect(again.slotThefts).toEqual([]);
  });

  it("the pools keep vending after the cleanup", async () => {
    expect((await vend("web")).ActivationId).toBe(ids.a3);
    const db = await vend("db");
    expect(db.ActivationId).not.toBe(ids.d1);
  });
});

describe("janitor: reconcile (slot theft)", () => {
  let stack: Stack;

  afterAll(async () => {
    await stack?.close();
  });

  it("retires an activation with more registrations than pairs, and the next vend rotates", async () => {
    stack = await aLocalStack({ BROKER_POOLS: pools({ leaky: { registrationLimit: 5, standby: false } }) });
    const clients = createAwsClients({
      region: stack.settings.region,
      endpoint: stack.emulatorUrl,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const logger = new CapturingLogger();
    const ops = createOperations({ settings: stack.settings, clients, logger, clock: stack.clock });
    const res = await stack.get("/activations/leaky");
    const pair = (await res.json()) as Pair;
    // One pair handed out, three nodes registered with it: the code leaked.
    for (let i = 0; i < 3; i++) expect((await registerNode(stack.emulatorUrl, pair)).status).toBe(200);

    const dry = await ops.janitor.cleanup({ apply: false });
    expect(dry.slotThefts).toEqual([
      { pool: "leaky", activationId: pair.ActivationId, issued: 1, registrationsCount: 3, retired: false },
    ]);
    expect(((await (await stack.get("/activations/leaky")).json()) as Pair).ActivationId).toBe(
      pair.ActivationId,
    );

    const applied = await ops.janitor.cleanup({ apply: true });
    expect(applied.slotThefts[0]).toMatchObject({ retired: true, issued: 2, registrationsCount: 3 });
    const warning = logger.lines.find((l) => l.level === "warn" && l.extra?.security === true);
    expect(warning?.extra).toMatchObject({ pool: "leaky", activationId: pair.ActivationId });
    expect(logger.text()).not.toContain(pair.ActivationCode);

    const next = (await (await stack.get("/activations/leaky")).json()) as Pair;
    expect(next.ActivationId).not.toBe(pair.ActivationId);
    clients.ssm.destroy();
    clients.dynamodb.destroy();
  });
});
