import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AddTagsToResourceCommand,
  CreateActivationCommand,
  DeleteActivationCommand,
  DeregisterManagedInstanceCommand,
  DescribeActivationsCommand,
  DescribeInstanceInformationCommand,
  type DescribeInstanceInformationCommandInput,
  ListTagsForResourceCommand,
  RemoveTagsFromResourceCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { DAY_SECONDS, MANAGED_INSTANCE_ID, registerLikeAgent } from "./helpers";

let aws: EmulatedAws;

let emulator: Emulator;
let ssm: SSMClient;

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  ssm = aws.rawSsm();
});
afterAll(async () => {
  ssm.destroy();
  await aws?.close();
});
beforeEach(() => emulator.controls.reset());

const inDays = (days: number) => new Date(Date.now() + days * DAY_SECONDS * 1000);

async function register(id: string, code: string): Promise<string> {
  const answer = await registerLikeAgent(emulator.url, id, code);
  expect(answer.status).toBe(200);
  return answer.body.InstanceId as string;
}

describe("CreateActivation", () => {
  it("returns a UUID and a 20-character code, and defaults to limit 1 and 24 hours", async () => {
    const before = Date.now();
    const created = await ssm.send(new CreateActivationCommand({ IamRole: "SSMServiceRole" }));
    expect(created.ActivationId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(created.ActivationCode).toMatch(/^[A-Za-z0-9+/]{20}$/);

    const { ActivationList } = await ssm.send(new DescribeActivationsCommand({}));
    expect(ActivationList).toHaveLength(1);
    const activation = ActivationList?.[0];
    expect(activation).toMatchObject({
      ActivationId: created.ActivationId,
      IamRole: "SSMServiceRole",
      RegistrationLimit: 1,
      RegistrationsCount: 0,
      Expired: false,
      Tags: [],
    });
    const expiresIn =
      (activation?.ExpirationDate as Date).getTime() - (activation?.CreatedDate as Date).getTime();
    expect(expiresIn).toBe(DAY_SECONDS * 1000);
    expect((activation?.CreatedDate as Date).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(JSON.stringify(ActivationList)).not.toContain(created.ActivationCode);
  });

  it("codes differ between activations", async () => {
    const a = await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    const b = await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    expect(a.ActivationCode).not.toBe(b.ActivationCode);
    expect(a.ActivationId).not.toBe(b.ActivationId);
  });

  it("keeps every field it was given", async () => {
    const expiration = new Date(Math.floor(inDays(7).getTime() / 1000) * 1000);
    const { ActivationId } = await ssm.send(
      new CreateActivationCommand({
        IamRole: "SSMServiceRole",
        Description: "fleet A",
        DefaultInstanceName: "web-server",
        RegistrationLimit: 1000,
        ExpirationDate: expiration,
        Tags: [{ Key: "Pool", Value: "default" }],
      }),
    );
    const { ActivationList } = await ssm.send(
      new DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [ActivationId as string] }],
      }),
    );
    expect(ActivationList?.[0]).toMatchObject({
      Description: "fleet A",
      DefaultInstanceName: "web-server",
      RegistrationLimit: 1000,
      ExpirationDate: expiration,
      Tags: [{ Key: "Pool", Value: "default" }],
    });
  });

  it.each([0, 1001, -1])("rejects RegistrationLimit %i", async (limit) => {
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", RegistrationLimit: limit })),
    ).rejects.toMatchObject({
      name: "ValidationException",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("accepts exactly 30 days and refuses 30 days and an hour", async () => {
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", ExpirationDate: inDays(30) })),
    ).resolves.toMatchObject({ ActivationId: expect.any(String) });
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", ExpirationDate: inDays(30 + 1 / 24) })),
    ).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringContaining("30 days"),
    });
  });

  it("refuses an expiration in the past", async () => {
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", ExpirationDate: inDays(-1) })),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("judges the 30-day rule by the emulator's clock", async () => {
    emulator.controls.setClockOffset(10 * DAY_SECONDS);
    // 35 days from real now is 25 days from the emulator's now.
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", ExpirationDate: inDays(35) })),
    ).resolves.toBeDefined();
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", ExpirationDate: inDays(5) })),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("requires IamRole of at most 64 characters and a Description of at most 256", async () => {
    await expect(ssm.send(new CreateActivationCommand({} as never))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(ssm.send(new CreateActivationCommand({ IamRole: "r".repeat(65) }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(ssm.send(new CreateActivationCommand({ IamRole: "r".repeat(64) }))).resolves.toBeDefined();
    await expect(
      ssm.send(new CreateActivationCommand({ IamRole: "R", Description: "d".repeat(257) })),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });
});

describe("DescribeActivations", () => {
  it("filters by IamRole, DefaultInstanceName and ActivationIds", async () => {
    const a = await ssm.send(new CreateActivationCommand({ IamRole: "RoleA", DefaultInstanceName: "web" }));
    const b = await ssm.send(new CreateActivationCommand({ IamRole: "RoleB", DefaultInstanceName: "db" }));
    await ssm.send(new CreateActivationCommand({ IamRole: "RoleB" }));

    const ids = async (
      filters: { FilterKey: "IamRole" | "DefaultInstanceName" | "ActivationIds"; FilterValues: string[] }[],
    ) =>
      (await ssm.send(new DescribeActivationsCommand({ Filters: filters }))).ActivationList?.map(
        (x) => x.ActivationId,
      );

    expect(await ids([{ FilterKey: "IamRole", FilterValues: ["RoleA"] }])).toEqual([a.ActivationId]);
    expect(await ids([{ FilterKey: "DefaultInstanceName", FilterValues: ["db"] }])).toEqual([b.ActivationId]);
    expect(
      await ids([
        { FilterKey: "ActivationIds", FilterValues: [a.ActivationId as string, b.ActivationId as string] },
      ]),
    ).toEqual([a.ActivationId, b.ActivationId]);
    expect(
      await ids([
        { FilterKey: "IamRole", FilterValues: ["RoleB"] },
        { FilterKey: "DefaultInstanceName", FilterValues: ["db"] },
      ]),
    ).toEqual([b.ActivationId]);
    expect(await ids([{ FilterKey: "IamRole", FilterValues: ["nobody"] }])).toEqual([]);
  });

  it("rejects an unknown filter key and MaxResults outside 1–50", async () => {
    await expect(
      ssm.send(
        new DescribeActivationsCommand({ Filters: [{ FilterKey: "Bogus" as never, FilterValues: ["x"] }] }),
      ),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await expect(ssm.send(new DescribeActivationsCommand({ MaxResults: 51 }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(ssm.send(new DescribeActivationsCommand({ MaxResults: 0 }))).rejects.toMatchObject({
      name: "ValidationException",
    });
  });

  it("pages with NextToken, each activation exactly once", async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i += 1)
      created.push((await ssm.send(new CreateActivationCommand({ IamRole: "R" }))).ActivationId as string);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await ssm.send(new DescribeActivationsCommand({ MaxResults: 3, NextToken: token }));
      expect(page.ActivationList?.length).toBeLessThanOrEqual(3);
      seen.push(...(page.ActivationList ?? []).map((a) => a.ActivationId as string));
      token = page.NextToken;
      pages += 1;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual(created);
    await expect(ssm.send(new DescribeActivationsCommand({ NextToken: "garbage" }))).rejects.toMatchObject({
      name: "InvalidNextToken",
    });
  });

  it("reports Expired once the emulator's clock passes ExpirationDate", async () => {
    await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    emulator.controls.setClockOffset(DAY_SECONDS + 1);
    const { ActivationList } = await ssm.send(new DescribeActivationsCommand({}));
    expect(ActivationList?.[0]?.Expired).toBe(true);
  });
});

describe("DeleteActivation", () => {
  it("deletes, keeps registered nodes, and then answers InvalidActivationId", async () => {
    const { ActivationId, ActivationCode } = await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    const instanceId = await register(ActivationId as string, ActivationCode as string);
    await ssm.send(new DeleteActivationCommand({ ActivationId }));
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList).toEqual([]);
    expect(emulator.controls.managedNodes().map((n) => n.instanceId)).toEqual([instanceId]);
    await expect(ssm.send(new DeleteActivationCommand({ ActivationId }))).rejects.toMatchObject({
      name: "InvalidActivationId",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("rejects a malformed ID", async () => {
    await expect(ssm.send(new DeleteActivationCommand({ ActivationId: "not-a-uuid" }))).rejects.toMatchObject(
      { name: "ValidationException" },
    );
  });
});

describe("managed nodes", () => {
  it("a registered node carries the activation's role, name, tags and ID", async () => {
    const { ActivationId, ActivationCode } = await ssm.send(
      new CreateActivationCommand({
        IamRole: "NodeRole",
        DefaultInstanceName: "edge",
        RegistrationLimit: 2,
        Tags: [{ Key: "Env", Value: "test" }],
      }),
    );
    const instanceId = await register(ActivationId as string, ActivationCode as string);
    expect(instanceId).toMatch(MANAGED_INSTANCE_ID);

    const { InstanceInformationList } = await ssm.send(
      new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [instanceId] }] }),
    );
    expect(InstanceInformationList).toHaveLength(1);
    expect(InstanceInformationList?.[0]).toMatchObject({
      InstanceId: instanceId,
      ActivationId,
      IamRole: "NodeRole",
      Name: "edge",
      ResourceType: "ManagedInstance",
      PingStatus: "Online",
      RegistrationDate: expect.any(Date),
    });
    const tags = await ssm.send(
      new ListTagsForResourceCommand({ ResourceType: "ManagedInstance", ResourceId: instanceId }),
    );
    expect(tags.TagList).toEqual([{ Key: "Env", Value: "test" }]);
  });

  it("filters by ActivationIds, ResourceType, PingStatus and tag, legacy list too, and pages", async () => {
    const a = await ssm.send(
      new CreateActivationCommand({
        IamRole: "R",
        RegistrationLimit: 10,
        Tags: [{ Key: "Pool", Value: "a" }],
      }),
    );
    const b = await ssm.send(
      new CreateActivationCommand({
        IamRole: "R",
        RegistrationLimit: 10,
        Tags: [{ Key: "Pool", Value: "b" }],
      }),
    );
    const fromA: string[] = [];
    for (let i = 0; i < 6; i += 1)
      fromA.push(await register(a.ActivationId as string, a.ActivationCode as string));
    const fromB = await register(b.ActivationId as string, b.ActivationCode as string);

    const list = async (input: DescribeInstanceInformationCommandInput) =>
      (await ssm.send(new DescribeInstanceInformationCommand(input))).InstanceInformationList?.map(
        (n) => n.InstanceId,
      );

    expect(await list({ Filters: [{ Key: "ActivationIds", Values: [b.ActivationId as string] }] })).toEqual([
      fromB,
    ]);
    expect(await list({ Filters: [{ Key: "tag:Pool", Values: ["b"] }] })).toEqual([fromB]);
    expect(
      await list({
        Filters: [
          { Key: "ResourceType", Values: ["ManagedInstance"] },
          { Key: "PingStatus", Values: ["Online"] },
        ],
      }),
    ).toHaveLength(7);
    expect(await list({ Filters: [{ Key: "ResourceType", Values: ["EC2Instance"] }] })).toEqual([]);
    expect(
      await list({
        InstanceInformationFilterList: [{ key: "ActivationIds", valueSet: [a.ActivationId as string] }],
      }),
    ).toEqual(fromA);

    const first = await ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 5 }));
    expect(first.InstanceInformationList).toHaveLength(5);
    const second = await ssm.send(
      new DescribeInstanceInformationCommand({ MaxResults: 5, NextToken: first.NextToken }),
    );
    expect(second.NextToken).toBeUndefined();
    expect(
      [...(first.InstanceInformationList ?? []), ...(second.InstanceInformationList ?? [])].map(
        (n) => n.InstanceId,
      ),
    ).toEqual([...fromA, fromB]);
  });

  it("rejects bad filters and MaxResults outside 5–50", async () => {
    await expect(
      ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "Bogus", Values: ["x"] }] })),
    ).rejects.toMatchObject({ name: "InvalidFilterKey" });
    await expect(ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 4 }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(
      ssm.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: "InstanceIds", Values: ["mi-00000000000000000"] }],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidInstanceId" });
  });

  it("DeregisterManagedInstance removes the node but gives no slot back", async () => {
    const { ActivationId, ActivationCode } = await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    const instanceId = await register(ActivationId as string, ActivationCode as string);
    await ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: instanceId }));
    expect((await ssm.send(new DescribeInstanceInformationCommand({}))).InstanceInformationList).toEqual([]);
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList?.[0]?.RegistrationsCount).toBe(
      1,
    );
    await expect(
      ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: instanceId })),
    ).rejects.toMatchObject({ name: "InvalidInstanceId" });
    await expect(
      ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: "i-1234" })),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("tags on a managed node can be added, overwritten and removed", async () => {
    const { ActivationId, ActivationCode } = await ssm.send(
      new CreateActivationCommand({ IamRole: "R", Tags: [{ Key: "A", Value: "1" }] }),
    );
    const instanceId = await register(ActivationId as string, ActivationCode as string);
    await ssm.send(
      new AddTagsToResourceCommand({
        ResourceType: "ManagedInstance",
        ResourceId: instanceId,
        Tags: [
          { Key: "A", Value: "2" },
          { Key: "B", Value: "3" },
        ],
      }),
    );
    await ssm.send(
      new RemoveTagsFromResourceCommand({
        ResourceType: "ManagedInstance",
        ResourceId: instanceId,
        TagKeys: ["B"],
      }),
    );
    expect(
      (
        await ssm.send(
          new ListTagsForResourceCommand({ ResourceType: "ManagedInstance", ResourceId: instanceId }),
        )
      ).TagList,
    ).toEqual([{ Key: "A", Value: "2" }]);
    await expect(
      ssm.send(
        new ListTagsForResourceCommand({
          ResourceType: "ManagedInstance",
          ResourceId: "mi-00000000000000000",
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidResourceId" });
  });

  it("an existing activation can't be tagged", async () => {
    const { ActivationId } = await ssm.send(new CreateActivationCommand({ IamRole: "R" }));
    await expect(
      ssm.send(
        new AddTagsToResourceCommand({
          ResourceType: "Activation" as never,
          ResourceId: ActivationId as string,
          Tags: [{ Key: "A", Value: "1" }],
        }),
      ),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });
});
