import { randomUUID } from "node:crypto";
import { CreateActivationCommand, PutParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ThrottledError } from "../../src/core/errors";
import { TAG_DEPLOYMENT, TAG_POOL } from "../../src/core/vend-policy";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { ParameterInventory, SsmActivationInventory, SsmNodeInventory } from "../../src/aws/ssm-inventory";
import { registerLikeAgent } from "../emulator/helpers";
import { TEST_ROLE, recordingSends, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { caught, failingClient, sdkError, stubbedSsmClient } from "../support/sdk-stubs";

/**
 * The janitor's inventories of SSM (activations, code parameters, managed nodes) on the emulated
 * AWS. Each block starts its own emulator, so its page counts are exact.
 */

/** A client that gets these answers, in order, then empty ones. */
function answeringClient(...outputs: object[]): SSMClient {
  return stubbedSsmClient(async () => outputs.shift() ?? {});
}

type Page = [operation: string, page: number, itemsSoFar: number];

function pageRecorder(): { pages: Page[]; onPage: (...page: Page) => void } {
  const pages: Page[] = [];
  return { pages, onPage: (...page) => pages.push(page) };
}

describe("SsmActivationInventory", () => {
  let aws: EmulatedAws;
  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  const createActivation = (input: { DefaultInstanceName?: string } = {}) =>
    aws.ssm.send(new CreateActivationCommand({ IamRole: TEST_ROLE, RegistrationLimit: 3, ...input }));

  it("pages through DescribeActivations 50 at a time, reporting each page", async () => {
    await Promise.all(Array.from({ length: 51 }, () => createActivation()));
    const { pages, onPage } = pageRecorder();
    const listed = await new SsmActivationInventory(aws.ssm, onPage).list();
    expect(listed).toHaveLength(51);
    expect(pages).toEqual([
      ["DescribeActivations", 1, 50],
      ["DescribeActivations", 2, 51],
    ]);
  });

  it("lists a default instance name only for the activation that has one", async () => {
    const named = await createActivation({ DefaultInstanceName: "web-node" });
    const unnamed = await createActivation();
    const listed = await new SsmActivationInventory(aws.ssm).list();
    expect(listed.find((a) => a.activationId === named.ActivationId)?.defaultInstanceName).toBe("web-node");
    expect(listed.find((a) => a.activationId === unnamed.ActivationId)).not.toHaveProperty(
      "defaultInstanceName",
    );
  });

  it("reads what SSM leaves out as empty, zero or not expired, never as an invented value", async () => {
    const activationId = randomUUID();
    const ssm = answeringClient({ ActivationList: [{ ActivationId: activationId, Tags: [{}] }] });
    expect(await new SsmActivationInventory(ssm).list()).toStrictEqual([
      {
        activationId,
        iamRole: "",
        registrationLimit: 0,
        registrationsCount: 0,
        expiresAt: 0,
        expired: false,
        createdAt: 0,
        tags: { "": "" },
      },
    ]);
  });
});

describe("ParameterInventory", () => {
  let aws: EmulatedAws;
  let prefix: string;
  let inventory: (onPage?: (...page: Page) => void) => ParameterInventory;
  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });
  beforeEach(() => {
    prefix = `/inv-${randomUUID().slice(0, 8)}`;
    inventory = (onPage) =>
      new ParameterInventory(aws.ssm, new ParameterStoreSecrets(aws.ssm, { prefix }), prefix, onPage);
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  const put = (Name: string) =>
    aws.ssm.send(new PutParameterCommand({ Name, Value: "{}", Type: "SecureString" }));

  it("finds the codes stored as prefix/pool/activation-id, and nothing else under the prefix", async () => {
    const [web, db, other] = [randomUUID(), randomUUID(), randomUUID()];
    for (const name of [
      `${prefix}/web/${web}`,
      `${prefix}/db/${db}`,
      `${prefix}/web/${other}/extra`,
      `${prefix}/web`,
      `${prefix}/web/not-an-activation-id`,
      `${prefix}/web/x${other}`,
      `${prefix}/web/${other}x`,
      `${prefix}/web.old/${other}`,
      `${prefix}-sibling/web/${other}`,
    ]) {
      await put(name);
    }
    const found = await inventory().list();
    expect(found.sort((a, b) => a.name.localeCompare(b.name))).toStrictEqual([
      { name: `${prefix}/db/${db}`, pool: "db", activationId: db, lastModifiedAt: expect.any(Number) },
      { name: `${prefix}/web/${web}`, pool: "web", activationId: web, lastModifiedAt: expect.any(Number) },
    ]);
  });

  it("lists without decryption: the janitor never needs a code, and its role cannot decrypt one", async () => {
    const { client, sent } = recordingSends(aws.ssm);
    await new ParameterInventory(client, new ParameterStoreSecrets(client, { prefix }), prefix).list();
    expect(sent.map((c) => c.input)).toEqual([
      expect.objectContaining({ Path: prefix, Recursive: true, WithDecryption: false }),
    ]);
  });

  it("pages through GetParametersByPath 10 at a time, reporting each page", async () => {
    for (let i = 0; i < 11; i++) await put(`${prefix}/web/${randomUUID()}`);
    const { pages, onPage } = pageRecorder();
    expect(await inventory(onPage).list()).toHaveLength(11);
    expect(pages).toEqual([
      ["GetParametersByPath", 1, 10],
      ["GetParametersByPath", 2, 11],
    ]);
  });

  it("names the failed call in a refusal, without SSM's own words", async () => {
    const ssm = failingClient(sdkError("AccessDeniedException", 403));
    const list = new ParameterInventory(ssm, new ParameterStoreSecrets(ssm, { prefix }), prefix).list();
    const error = (await caught(list)) as Error;
    expect(error.message).toContain("GetParametersByPath failed with AccessDeniedException (HTTP 403)");
    expect(error.message).not.toContain("from the stub");
  });

  it("turns throttling into ThrottledError", async () => {
    aws.emulator.controls.injectFault({ service: "ssm", operation: "GetParametersByPath", kind: "throttle" });
    const noRetry = aws.clients({ maxAttempts: 1 }).ssm;
    const list = new ParameterInventory(
      noRetry,
      new ParameterStoreSecrets(noRetry, { prefix }),
      prefix,
    ).list();
    await expect(list).rejects.toMatchObject({ name: "ThrottledError", service: "Parameter Store" });
  });
});

describe("SsmNodeInventory", () => {
  const deployment = "d-nodes";
  let aws: EmulatedAws;
  let nodes: SsmNodeInventory;
  let web: string;
  let db: string;
  let foreign: string;

  /** Registers one node through an activation with these tags, as the agent would. */
  async function registeredNode(tags: Record<string, string>, DefaultInstanceName?: string): Promise<string> {
    const activation = await aws.ssm.send(
      new CreateActivationCommand({
        IamRole: TEST_ROLE,
        RegistrationLimit: 60,
        DefaultInstanceName,
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    const { body } = await registerLikeAgent(aws.url, activation.ActivationId!, activation.ActivationCode!);
    return body.InstanceId as string;
  }

  const ours = (pool: string) => ({ [TAG_DEPLOYMENT]: deployment, [TAG_POOL]: pool });
  const view = (id: string) => aws.emulator.controls.managedNodes().find((n) => n.instanceId === id);

  beforeAll(async () => {
    aws = await startEmulatedAws();
    nodes = new SsmNodeInventory(aws.ssm, deployment);
    web = await registeredNode(ours("web"), "web-node");
    db = await registeredNode(ours("db"));
    foreign = await registeredNode({ [TAG_DEPLOYMENT]: "someone-else", [TAG_POOL]: "web" });
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  it("lists only this deployment's nodes, each with what SSM reports and the pool it was asked about", async () => {
    const listed = await nodes.listOwned(["web"]);
    const reported = (id: string) => ({
      instanceId: id,
      activationId: view(id)!.activationId,
      pingStatus: "Online",
      hasNameTag: false,
      lastPingAt: view(id)!.lastPingDateTime.getTime(),
      registeredAt: view(id)!.registrationDate.getTime(),
    });
    expect(listed).toStrictEqual([
      { ...reported(web), name: "web-node", pool: "web" },
      // db's pool was not asked about: no pool, rather than a wrong one.
      reported(db),
    ]);
  });

  it("lists a node SSM sends without an activation id (an EC2 instance with the tag) without one", async () => {
    const ec2 = { InstanceId: "i-0123456789abcdef0", PingStatus: "Online", ResourceType: "EC2Instance" };
    // Answers the deployment's listing; the Name-tag listing comes back empty.
    const ssm = answeringClient({ InstanceInformationList: [ec2] });
    expect(await new SsmNodeInventory(ssm, deployment).listOwned([])).toStrictEqual([
      { instanceId: ec2.InstanceId, pingStatus: "Online", hasNameTag: false },
    ]);
  });

  it("gives each node the pool its tag names", async () => {
    const listed = await nodes.listOwned(["web", "db"]);
    expect(listed.map((n) => [n.instanceId, n.pool])).toEqual([
      [web, "web"],
      [db, "db"],
    ]);
  });

  it("shows the host name and connection state the agent last reported", async () => {
    aws.emulator.controls.agentReport(db, {
      computerName: "db-01.example.com",
      pingStatus: "ConnectionLost",
    });
    const listed = await nodes.listOwned([]);
    expect(listed.find((n) => n.instanceId === db)).toMatchObject({
      computerName: "db-01.example.com",
      pingStatus: "ConnectionLost",
    });
    expect(listed.find((n) => n.instanceId === web)).toMatchObject({ pingStatus: "Online" });
    aws.emulator.controls.agentReport(db, { pingStatus: "Online" });
  });

  it("adds tags to a node; a Name tag shows as hasNameTag", async () => {
    await nodes.addTags(web, { Name: "web-01", team: "platform" });
    expect(view(web)?.tags).toEqual(
      expect.arrayContaining([
        { Key: "Name", Value: "web-01" },
        { Key: "team", Value: "platform" },
      ]),
    );
    const listed = await nodes.listOwned([]);
    expect(listed.map((n) => [n.instanceId, n.hasNameTag])).toEqual([
      [web, true],
      [db, false],
    ]);
  });

  it("counts every hybrid node of the account and Region, whoever registered it", async () => {
    const { client, sent } = recordingSends(aws.ssm);
    expect(await new SsmNodeInventory(client, deployment).countHybrid()).toBe(
      aws.emulator.controls.managedNodes().length,
    );
    expect(aws.emulator.controls.managedNodes().map((n) => n.instanceId)).toContain(foreign);
    expect(sent.map((c) => c.input)).toEqual([
      expect.objectContaining({ Filters: [{ Key: "ResourceType", Values: ["ManagedInstance"] }] }),
    ]);
  });

  it("pages through DescribeInstanceInformation 50 at a time, reporting each page", async () => {
    const many = "d-many";
    for (let i = 0; i < 51; i++) await registeredNode({ [TAG_DEPLOYMENT]: many, [TAG_POOL]: "bulk" });
    const { pages, onPage } = pageRecorder();
    const listed = await new SsmNodeInventory(aws.ssm, many, onPage).listOwned(["bulk"]);
    expect(listed).toHaveLength(51);
    expect(listed.every((n) => n.pool === "bulk")).toBe(true);
    expect(pages).toEqual([
      ["DescribeInstanceInformation", 1, 50], // the deployment's nodes
      ["DescribeInstanceInformation", 2, 51],
      ["DescribeInstanceInformation", 1, 0], // those with a Name tag
      ["DescribeInstanceInformation", 1, 50], // pool "bulk"
      ["DescribeInstanceInformation", 2, 51],
    ]);
  });

  describe("deregister", () => {
    it("removes the node", async () => {
      const gone = await registeredNode(ours("web"));
      await nodes.deregister(gone);
      expect(view(gone)).toBeUndefined();
    });

    it("treats an unknown node as already gone", async () => {
      await expect(nodes.deregister("mi-0123456789abcdef0")).resolves.toBeUndefined();
    });

    it("rethrows a refusal", async () => {
      const refused = new SsmNodeInventory(failingClient(sdkError("AccessDeniedException")), deployment);
      await expect(refused.deregister(web)).rejects.toMatchObject({ name: "AccessDeniedException" });
    });
  });

  it.each([
    ["listOwned", "DescribeInstanceInformation", (n: SsmNodeInventory) => n.listOwned(["web"])],
    ["countHybrid", "DescribeInstanceInformation", (n: SsmNodeInventory) => n.countHybrid()],
    ["addTags", "AddTagsToResource", (n: SsmNodeInventory) => n.addTags(web, { Name: "x" })],
    ["deregister", "DeregisterManagedInstance", (n: SsmNodeInventory) => n.deregister(web)],
  ] as const)("turns a throttled %s (%s) into ThrottledError", async (_name, operation, call) => {
    aws.emulator.controls.injectFault({ service: "ssm", operation, kind: "throttle" });
    const noRetry = new SsmNodeInventory(aws.clients({ maxAttempts: 1 }).ssm, deployment);
    const error = await caught(call(noRetry));
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toMatchObject({ service: "SSM", cause: { name: "ThrottlingException" } });
  });
});
