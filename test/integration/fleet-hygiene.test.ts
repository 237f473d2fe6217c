import { CreateActivationCommand, ListTagsForResourceCommand } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAwsClients, type AwsClients } from "../../src/aws/clients";
import { createOperations, type Operations } from "../../src/composition";
import { TAG_DEPLOYMENT, TAG_POOL } from "../../src/core/vend-policy";
import { CapturingLogger } from "../support/fakes";
import { aLocalStack, pools, registerNode } from "../support/local";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
const DAY_S = 86_400;

/**
 * A simulated fleet: re-imaged hosts left ConnectionLost duplicates behind. The janitor names
 * nodes after their host only in pools that opted in, and deregisters an older duplicate only
 * when its pool says after how many days — never the newest node of a host, never a node that
 * is merely offline, never another deployment's node.
 */
describe("janitor: fleet hygiene", () => {
  let stack: Stack;
  let clients: AwsClients;
  let ops: Operations;
  const node: Record<string, string> = {};

  const register = async (pool: string): Promise<string> => {
    const pair = (await (await stack.get(`/activations/${pool}`)).json()) as {
      ActivationId: string;
      ActivationCode: string;
    };
    const { body } = await registerNode(stack.emulatorUrl, pair);
    return body.InstanceId!;
  };
  const tagsOf = async (id: string) =>
    Object.fromEntries(
      (
        await clients.ssm.send(
          new ListTagsForResourceCommand({ ResourceType: "ManagedInstance", ResourceId: id }),
        )
      ).TagList!.map((t) => [t.Key, t.Value]),
    );
  const liveNodes = () =>
    stack.emulator.controls
      .managedNodes()
      .map((n) => n.instanceId)
      .sort();

  beforeAll(async () => {
    stack = await aLocalStack({
      BROKER_POOLS: pools({
        fleet: { hygiene: { nameTag: true, deregisterDuplicatesAfterDays: 2 } },
        plain: {},
      }),
    });
    clients = createAwsClients({
      region: stack.settings.region,
      endpoint: stack.emulatorUrl,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    ops = createOperations({
      settings: stack.settings,
      clients,
      logger: new CapturingLogger(),
      clock: stack.clock,
    });
    const report = stack.emulator.controls.agentReport.bind(stack.emulator.controls);

    // web-01 was re-imaged: the old node went silent 5 days ago, the new one is online.
    node.old01 = await register("fleet");
    report(node.old01, {
      computerName: "web-01",
      pingStatus: "ConnectionLost",
      lastPingSecondsAgo: 5 * DAY_S,
    });
    stack.moveClocks(60);
    node.new01 = await register("fleet");
    report(node.new01, { computerName: "WEB-01" });
    // web-02 is merely offline (no duplicate); web-03's old node went silent only a day ago.
    node.web02 = await register("fleet");
    report(node.web02, {
      computerName: "web-02",
      pingStatus: "ConnectionLost",
      lastPingSecondsAgo: 10 * DAY_S,
    });
    node.old03 = await register("fleet");
    report(node.old03, { computerName: "web-03", pingStatus: "ConnectionLost", lastPingSecondsAgo: DAY_S });
    stack.moveClocks(120);
    node.new03 = await register("fleet");
    report(node.new03, { computerName: "web-03" });
    // A pool without hygiene: its duplicates stay and its nodes stay nameless.
    node.plainOld = await register("plain");
    report(node.plainOld, {
      computerName: "db-01",
      pingStatus: "ConnectionLost",
      lastPingSecondsAgo: 9 * DAY_S,
    });
    stack.moveClocks(180);
    node.plainNew = await register("plain");
    report(node.plainNew, { computerName: "db-01" });
    // Another deployment's node with the same host name.
    const theirs = await clients.ssm.send(
      new CreateActivationCommand({
        IamRole: "SSMServiceRole",
        Tags: [
          { Key: TAG_DEPLOYMENT, Value: "someone-else" },
          { Key: TAG_POOL, Value: "fleet" },
        ],
      }),
    );
    node.foreign = (
      await registerNode(stack.emulatorUrl, {
        ActivationId: theirs.ActivationId!,
        ActivationCode: theirs.ActivationCode!,
      })
    ).body.InstanceId!;
    report(node.foreign, {
      computerName: "web-01",
      pingStatus: "ConnectionLost",
      lastPingSecondsAgo: 30 * DAY_S,
    });
  });

  afterAll(async () => {
    clients?.ssm.destroy();
    clients?.dynamodb.destroy();
    await stack?.close();
  });

  it("plans without changing anything in a dry run", async () => {
    const before = liveNodes();
    const report = await ops.janitor.hygiene({ apply: false });
    const actions = Object.fromEntries(report.nodes.map((n) => [n.node.instanceId, n.actions]));
    expect(actions).toEqual({
      [node.old01!]: ["deregister"],
      [node.new01!]: ["tag-name"],
      [node.web02!]: ["tag-name"],
      [node.old03!]: ["tag-name"],
      [node.new03!]: ["tag-name"],
      [node.plainOld!]: [],
      [node.plainNew!]: [],
    });
    expect(report.nodes.find((n) => n.node.instanceId === node.old01)?.duplicateOf).toBe(node.new01);
    expect(report.hybridNodes).toBe(8);
    expect(liveNodes()).toEqual(before);
    expect(await tagsOf(node.new01!)).not.toHaveProperty("Name");
  });

  it("deregisters only the old duplicate, names the rest after their host, then has nothing left to do", async () => {
    const report = await ops.janitor.hygiene({ apply: true });
    expect(report.failures).toEqual([]);
    expect(report.deregistered).toEqual([node.old01]);
    expect(liveNodes()).not.toContain(node.old01);
    expect(liveNodes()).toContain(node.foreign);
    expect((await tagsOf(node.new01!)).Name).toBe("WEB-01");
    expect((await tagsOf(node.old03!)).Name).toBe("web-03");
    expect(await tagsOf(node.plainNew!)).not.toHaveProperty("Name");
    expect(await tagsOf(node.foreign!)).not.toHaveProperty("Name");

    const again = await ops.janitor.hygiene({ apply: true });
    expect(again.deregistered).toEqual([]);
    expect(again.tagged).toEqual([]);
  });

  it("on demand, deregisters what the operator selects, in any pool of this deployment", async () => {
    const stale = await ops.janitor.hygiene({ apply: false, selection: { staleDays: 7 } });
    const selected = stale.nodes
      .filter((n) => n.actions.includes("deregister"))
      .map((n) => n.node.instanceId);
    expect(selected.sort()).toEqual([node.web02, node.plainOld].sort());
    const dupes = await ops.janitor.hygiene({ apply: true, selection: { duplicates: true } });
    expect([...dupes.deregistered].sort()).toEqual([node.old03, node.plainOld].sort());
    expect(liveNodes()).toContain(node.web02);
    expect(liveNodes()).toContain(node.foreign);
  });
});
