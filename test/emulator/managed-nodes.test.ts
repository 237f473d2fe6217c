import {
  AddTagsToResourceCommand,
  CreateActivationCommand,
  DeregisterManagedInstanceCommand,
  DescribeActivationsCommand,
  DescribeInstanceInformationCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { registerLikeAgent } from "./helpers";

/**
 * The hygiene calls of the janitor against the emulator: what the agent reports (ComputerName,
 * ping state), tag filters combined with AND (tag:<key> and tag-key), tags added after
 * registration, deregistration.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationStringFilter.html
 */
describe("emulated SSM: managed nodes as the janitor sees them", () => {
  let aws: EmulatedAws;
  let emulator: Emulator;
  let ssm: SSMClient;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    emulator = aws.emulator;
    ssm = aws.rawSsm();
  });
  afterAll(async () => {
    ssm?.destroy();
    await aws?.close();
  });

  async function node(tags: { Key: string; Value: string }[]): Promise<string> {
    const a = await ssm.send(new CreateActivationCommand({ IamRole: "R", RegistrationLimit: 5, Tags: tags }));
    const { body } = await registerLikeAgent(emulator.url, a.ActivationId!, a.ActivationCode!);
    return body.InstanceId as string;
  }

  const ids = async (Filters: { Key: string; Values: string[] }[]) =>
    (await ssm.send(new DescribeInstanceInformationCommand({ Filters }))).InstanceInformationList?.map(
      (n) => n.InstanceId,
    );

  it("shows what the agent reports: ComputerName, IPAddress, PingStatus, LastPingDateTime", async () => {
    const id = await node([{ Key: "k", Value: "v" }]);
    const before = (
      await ssm.send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [id] }] }),
      )
    ).InstanceInformationList![0]!;
    expect(before.ComputerName).toBeUndefined();
    emulator.controls.agentReport(id, {
      computerName: "web-01.example.com",
      ipAddress: "10.0.0.7",
      pingStatus: "ConnectionLost",
      lastPingSecondsAgo: 3 * 86_400,
    });
    const after = (
      await ssm.send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [id] }] }),
      )
    ).InstanceInformationList![0]!;
    expect(after).toMatchObject({
      ComputerName: "web-01.example.com",
      IPAddress: "10.0.0.7",
      PingStatus: "ConnectionLost",
    });
    const silentFor = emulator.controls.now().getTime() - after.LastPingDateTime!.getTime();
    expect(Math.round(silentFor / 86_400_000)).toBe(3);
  });

  it("accepts agent reports over HTTP and rejects unknown fields", async () => {
    const id = await node([]);
    const ok = await fetch(`${emulator.url}/_emulator/managed-nodes/${id}`, {
      method: "POST",
      body: JSON.stringify({ computerName: "db-1" }),
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { computerName: string }).computerName).toBe("db-1");
    const bad = await fetch(`${emulator.url}/_emulator/managed-nodes/${id}`, {
      method: "POST",
      body: JSON.stringify({ hostname: "db-1" }),
    });
    expect(bad.status).toBe(400);
  });

  it("ANDs tag filters, matches tags added after registration, and forgets deregistered nodes", async () => {
    const a = await node([
      { Key: "dep", Value: "d1" },
      { Key: "pool", Value: "web" },
    ]);
    const b = await node([
      { Key: "dep", Value: "d1" },
      { Key: "pool", Value: "db" },
    ]);
    const foreign = await node([{ Key: "dep", Value: "d2" }]);
    expect(await ids([{ Key: "tag:dep", Values: ["d1"] }])).toEqual([a, b]);
    expect(
      await ids([
        { Key: "tag:dep", Values: ["d1"] },
        { Key: "tag:pool", Values: ["db"] },
      ]),
    ).toEqual([b]);
    await ssm.send(
      new AddTagsToResourceCommand({
        ResourceType: "ManagedInstance",
        ResourceId: a,
        Tags: [{ Key: "Name", Value: "web-01" }],
      }),
    );
    expect(
      await ids([
        { Key: "tag:dep", Values: ["d1"] },
        { Key: "tag-key", Values: ["Name"] },
      ]),
    ).toEqual([a]);
    expect(await ids([{ Key: "tag:Name", Values: ["web-01"] }])).toEqual([a]);
    await ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: b }));
    expect(await ids([{ Key: "tag:dep", Values: ["d1"] }])).toEqual([a]);
    await expect(ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: b }))).rejects.toMatchObject({
      name: "InvalidInstanceId",
    });
    expect(await ids([{ Key: "tag:dep", Values: ["d2"] }])).toEqual([foreign]);
  });

  it("does not give a deregistered node's slot back to its activation", async () => {
    const a = await ssm.send(new CreateActivationCommand({ IamRole: "R", RegistrationLimit: 1 }));
    const { body } = await registerLikeAgent(emulator.url, a.ActivationId!, a.ActivationCode!);
    await ssm.send(new DeregisterManagedInstanceCommand({ InstanceId: body.InstanceId as string }));
    const listed = await ssm.send(
      new DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [a.ActivationId!] }],
      }),
    );
    expect(listed.ActivationList?.[0]?.RegistrationsCount).toBe(1);
  });
});
