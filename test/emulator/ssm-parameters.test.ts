import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AddTagsToResourceCommand,
  DeleteParameterCommand,
  DeleteParametersCommand,
  DescribeParametersCommand,
  type DescribeParametersCommandInput,
  GetParameterCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

let aws: EmulatedAws;

let emulator: Emulator;
let ssm: SSMClient;

beforeAll(async () => {
  aws = await startEmulatedAws({ region: "eu-west-1" });
  emulator = aws.emulator;
  ssm = aws.rawSsm();
});
afterAll(async () => {
  ssm.destroy();
  await aws?.close();
});
beforeEach(() => emulator.controls.reset());

const put = (input: ConstructorParameters<typeof PutParameterCommand>[0]) =>
  ssm.send(new PutParameterCommand(input));

describe("PutParameter / GetParameter", () => {
  it("creates version 1 in the Standard tier and reads it back with ARN and DataType", async () => {
    expect(await put({ Name: "/broker/pool/default", Value: "hello", Type: "String" })).toMatchObject({
      Version: 1,
      Tier: "Standard",
    });
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: "/broker/pool/default" }));
    expect(Parameter).toMatchObject({
      Name: "/broker/pool/default",
      Type: "String",
      Value: "hello",
      Version: 1,
      DataType: "text",
      ARN: "arn:aws:ssm:eu-west-1:000000000000:parameter/broker/pool/default",
      LastModifiedDate: expect.any(Date),
    });
  });

  it("refuses to overwrite without Overwrite, and increments the version with it", async () => {
    await put({ Name: "p", Value: "v1", Type: "String" });
    await expect(put({ Name: "p", Value: "v2", Type: "String" })).rejects.toMatchObject({
      name: "ParameterAlreadyExists",
      $metadata: { httpStatusCode: 400 },
    });
    expect(await put({ Name: "p", Value: "v2", Overwrite: true })).toMatchObject({ Version: 2 });
    expect(await put({ Name: "p", Value: "v3", Overwrite: true })).toMatchObject({ Version: 3 });
    expect((await ssm.send(new GetParameterCommand({ Name: "p" }))).Parameter).toMatchObject({
      Value: "v3",
      Version: 3,
      Type: "String",
    });
  });

  it("selects versions with name:version", async () => {
    await put({ Name: "/a/b", Value: "one", Type: "String" });
    await put({ Name: "/a/b", Value: "two", Type: "String", Overwrite: true });
    expect((await ssm.send(new GetParameterCommand({ Name: "/a/b:1" }))).Parameter).toMatchObject({
      Value: "one",
      Version: 1,
      Selector: ":1",
      Name: "/a/b",
    });
    expect((await ssm.send(new GetParameterCommand({ Name: "/a/b:2" }))).Parameter).toMatchObject({
      Value: "two",
      Version: 2,
    });
    await expect(ssm.send(new GetParameterCommand({ Name: "/a/b:3" }))).rejects.toMatchObject({
      name: "ParameterVersionNotFound",
    });
    await expect(ssm.send(new GetParameterCommand({ Name: "/a/missing" }))).rejects.toMatchObject({
      name: "ParameterNotFound",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("accepts the parameter's ARN as its name", async () => {
    await put({ Name: "/x/y", Value: "v", Type: "String" });
    const { Parameter } = await ssm.send(
      new GetParameterCommand({ Name: "arn:aws:ssm:eu-west-1:000000000000:parameter/x/y" }),
    );
    expect(Parameter?.Value).toBe("v");
  });

  it("SecureString: plaintext only WithDecryption, an opaque stable blob otherwise, default key alias/aws/ssm", async () => {
    await put({ Name: "/broker/code", Value: "s3cr3t-Activation+Code", Type: "SecureString" });
    const hidden = (await ssm.send(new GetParameterCommand({ Name: "/broker/code" }))).Parameter;
    expect(hidden?.Type).toBe("SecureString");
    expect(hidden?.Value).not.toContain("s3cr3t");
    expect(hidden?.Value).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(hidden?.Value as string, "base64").toString("latin1")).not.toContain("s3cr3t");
    expect((await ssm.send(new GetParameterCommand({ Name: "/broker/code" }))).Parameter?.Value).toBe(
      hidden?.Value,
    );
    expect(
      (await ssm.send(new GetParameterCommand({ Name: "/broker/code", WithDecryption: true }))).Parameter
        ?.Value,
    ).toBe("s3cr3t-Activation+Code");

    const described = await ssm.send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: ["/broker/code"] }] }),
    );
    expect(described.Parameters?.[0]).toMatchObject({
      KeyId: "alias/aws/ssm",
      Type: "SecureString",
      Version: 1,
    });
  });

  it("stores a custom KeyId without checking it, and refuses KeyId on a String", async () => {
    await put({ Name: "/k", Value: "v", Type: "SecureString", KeyId: "alias/broker-key" });
    expect((await ssm.send(new DescribeParametersCommand({}))).Parameters?.[0]?.KeyId).toBe(
      "alias/broker-key",
    );
    await expect(
      put({ Name: "/s", Value: "v", Type: "String", KeyId: "alias/broker-key" }),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it.each([
    ["a name with a space inside", "/a b", "ValidationException"],
    ["the aws prefix", "/aws/thing", "ValidationException"],
    ["the ssm prefix, any case", "SSMthing", "ValidationException"],
    ["a hierarchy without a leading slash", "a/b", "ValidationException"],
    ["a forbidden character", "/a/b#c", "ValidationException"],
    [
      "16 levels",
      `/${Array.from({ length: 16 }, (_, i) => `l${i}`).join("/")}`,
      "HierarchyLevelLimitExceededException",
    ],
  ])("rejects %s", async (_label, name, code) => {
    await expect(put({ Name: name, Value: "v", Type: "String" })).rejects.toMatchObject({ name: code });
  });

  it("accepts 15 levels, and needs a Type to create", async () => {
    await expect(
      put({
        Name: `/${Array.from({ length: 15 }, (_, i) => `l${i}`).join("/")}`,
        Value: "v",
        Type: "String",
      }),
    ).resolves.toMatchObject({ Version: 1 });
    await expect(put({ Name: "/untyped", Value: "v" })).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(put({ Name: "/bad-type", Value: "v", Type: "Number" as never })).rejects.toMatchObject({
      name: "ValidationException",
    });
  });

  it("enforces tiers: 4 KB standard, 8 KB advanced, no downgrade", async () => {
    await expect(put({ Name: "/big", Value: "x".repeat(4097), Type: "String" })).rejects.toMatchObject({
      name: "ValidationException",
    });
    expect(
      await put({ Name: "/big", Value: "x".repeat(4097), Type: "String", Tier: "Advanced" }),
    ).toMatchObject({ Tier: "Advanced", Version: 1 });
    expect(
      await put({ Name: "/smart", Value: "x".repeat(5000), Type: "String", Tier: "Intelligent-Tiering" }),
    ).toMatchObject({ Tier: "Advanced" });
    await expect(
      put({ Name: "/big", Value: "small", Overwrite: true, Tier: "Standard" }),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("keeps tags given at creation, refuses tags with Overwrite, tags via AddTagsToResource", async () => {
    await put({ Name: "/tagged", Value: "v", Type: "String", Tags: [{ Key: "Owner", Value: "broker" }] });
    await expect(
      put({ Name: "/tagged", Value: "v2", Overwrite: true, Tags: [{ Key: "X", Value: "y" }] }),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await ssm.send(
      new AddTagsToResourceCommand({
        ResourceType: "Parameter",
        ResourceId: "/tagged",
        Tags: [{ Key: "Env", Value: "dev" }],
      }),
    );
    expect(
      (await ssm.send(new ListTagsForResourceCommand({ ResourceType: "Parameter", ResourceId: "/tagged" })))
        .TagList,
    ).toEqual([
      { Key: "Owner", Value: "broker" },
      { Key: "Env", Value: "dev" },
    ]);
  });

  it("checks AllowedPattern without echoing the value", async () => {
    await expect(
      put({ Name: "/num", Value: "abc", Type: "String", AllowedPattern: "^\\d+$" }),
    ).rejects.toMatchObject({
      name: "ParameterPatternMismatchException",
      message: expect.not.stringContaining("abc"),
    });
    await expect(
      put({ Name: "/num", Value: "42", Type: "String", AllowedPattern: "^\\d+$" }),
    ).resolves.toMatchObject({ Version: 1 });
  });
});

describe("GetParameters / GetParametersByPath", () => {
  it("GetParameters splits found and unknown names", async () => {
    await put({ Name: "/g/1", Value: "a", Type: "String" });
    const answer = await ssm.send(new GetParametersCommand({ Names: ["/g/1", "/g/nope"] }));
    expect(answer.Parameters?.map((p) => p.Value)).toEqual(["a"]);
    expect(answer.InvalidParameters).toEqual(["/g/nope"]);
  });

  it("one level by default, every level with Recursive, pages of MaxResults", async () => {
    await put({ Name: "/app/a", Value: "1", Type: "String" });
    await put({ Name: "/app/b", Value: "2", Type: "StringList" });
    await put({ Name: "/app/deep/c", Value: "3", Type: "SecureString" });
    await put({ Name: "/other/d", Value: "4", Type: "String" });

    const names = async (input: ConstructorParameters<typeof GetParametersByPathCommand>[0]) =>
      (await ssm.send(new GetParametersByPathCommand(input))).Parameters?.map((p) => `${p.Name}=${p.Value}`);
    expect(await names({ Path: "/app" })).toEqual(["/app/a=1", "/app/b=2"]);
    expect(await names({ Path: "/app/", Recursive: true, WithDecryption: true })).toEqual([
      "/app/a=1",
      "/app/b=2",
      "/app/deep/c=3",
    ]);
    const hidden = await ssm.send(new GetParametersByPathCommand({ Path: "/app", Recursive: true }));
    expect(hidden.Parameters?.[2]?.Value).not.toBe("3");
    expect(
      await names({
        Path: "/app",
        Recursive: true,
        ParameterFilters: [{ Key: "Type", Values: ["StringList"] }],
      }),
    ).toEqual(["/app/b=2"]);

    const first = await ssm.send(
      new GetParametersByPathCommand({ Path: "/", Recursive: true, MaxResults: 3 }),
    );
    expect(first.Parameters).toHaveLength(3);
    const second = await ssm.send(
      new GetParametersByPathCommand({
        Path: "/",
        Recursive: true,
        MaxResults: 3,
        NextToken: first.NextToken,
      }),
    );
    expect(second.Parameters?.map((p) => p.Name)).toEqual(["/other/d"]);
    expect(second.NextToken).toBeUndefined();

    await expect(
      ssm.send(new GetParametersByPathCommand({ Path: "/", MaxResults: 11 })),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await expect(ssm.send(new GetParametersByPathCommand({ Path: "app" }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(
      ssm.send(
        new GetParametersByPathCommand({ Path: "/app", ParameterFilters: [{ Key: "Name", Values: ["x"] }] }),
      ),
    ).rejects.toMatchObject({ name: "InvalidFilterKey" });
  });
});

describe("DeleteParameter(s) / DescribeParameters", () => {
  it("DeleteParameter removes every version and then answers ParameterNotFound", async () => {
    await put({ Name: "/d", Value: "1", Type: "String" });
    await put({ Name: "/d", Value: "2", Type: "String", Overwrite: true });
    await ssm.send(new DeleteParameterCommand({ Name: "/d" }));
    await expect(ssm.send(new GetParameterCommand({ Name: "/d:1" }))).rejects.toMatchObject({
      name: "ParameterNotFound",
    });
    await expect(ssm.send(new DeleteParameterCommand({ Name: "/d" }))).rejects.toMatchObject({
      name: "ParameterNotFound",
    });
    // A re-created parameter starts again at version 1.
    expect(await put({ Name: "/d", Value: "new", Type: "String" })).toMatchObject({ Version: 1 });
  });

  it("DeleteParameters reports DeletedParameters and InvalidParameters, at most 10 names", async () => {
    await put({ Name: "/m/1", Value: "v", Type: "String" });
    await put({ Name: "/m/2", Value: "v", Type: "String" });
    const answer = await ssm.send(new DeleteParametersCommand({ Names: ["/m/1", "/m/x", "/m/2"] }));
    expect(answer.DeletedParameters).toEqual(["/m/1", "/m/2"]);
    expect(answer.InvalidParameters).toEqual(["/m/x"]);
    await expect(
      ssm.send(new DeleteParametersCommand({ Names: Array.from({ length: 11 }, (_, i) => `/n${i}`) })),
    ).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("DescribeParameters filters by Name and Path, pages, and never returns values", async () => {
    for (const name of ["/p/a", "/p/b", "/p/q/c", "/z"])
      await put({ Name: name, Value: "secret-value", Type: "String", Description: `about ${name}` });
    const names = async (input: DescribeParametersCommandInput) => {
      const answer = await ssm.send(new DescribeParametersCommand(input));
      expect(JSON.stringify(answer)).not.toContain("secret-value");
      return answer.Parameters?.map((p) => p.Name);
    };
    expect(await names({ ParameterFilters: [{ Key: "Path", Values: ["/p"] }] })).toEqual(["/p/a", "/p/b"]);
    expect(await names({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: ["/p"] }] })).toEqual(
      ["/p/a", "/p/b", "/p/q/c"],
    );
    expect(
      await names({ ParameterFilters: [{ Key: "Name", Option: "BeginsWith", Values: ["/p/q"] }] }),
    ).toEqual(["/p/q/c"]);
    expect(await names({ ParameterFilters: [{ Key: "Name", Values: ["/z"] }] })).toEqual(["/z"]);
    const first = await ssm.send(new DescribeParametersCommand({ MaxResults: 3 }));
    expect(first.Parameters?.map((p) => p.Name)).toEqual(["/p/a", "/p/b", "/p/q/c"]);
    expect(first.Parameters?.[0]).toMatchObject({
      Description: "about /p/a",
      Tier: "Standard",
      Version: 1,
      Type: "String",
    });
    const second = await ssm.send(
      new DescribeParametersCommand({ MaxResults: 3, NextToken: first.NextToken }),
    );
    expect(second.Parameters?.map((p) => p.Name)).toEqual(["/z"]);
    await expect(
      ssm.send(
        new DescribeParametersCommand({
          ParameterFilters: [{ Key: "Path", Option: "Equals", Values: ["/p"] }],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidFilterOption" });
  });
});
