import { afterAll, beforeAll, describe, it } from "vitest";
import { CreateTableCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { awsCli } from "../support/aws-cli";
import { TOOLS, missingTools } from "../support/tools";

const skip = missingTools(TOOLS.awsCli);
let local: EmulatedAws;
let emulator: Emulator;
let cli: ReturnType<typeof awsCli>;
const aws = (...args: string[]) => cli.run(...args);

describe.skipIf(skip)(`the AWS CLI works against the emulator unchanged${skip}`, () => {
  beforeAll(async () => {
    local = await startEmulatedAws({ region: "eu-central-1" });
    emulator = local.emulator;
    cli = awsCli(emulator.url, emulator.region);
  });
  afterAll(async () => {
    await local?.close();
    cli?.dispose();
  });

  // Each CLI start costs seconds of Python start-up, so the three cases run side by side.
  it.concurrent("aws ssm create-activation and describe-activations", async ({ expect }) => {
    const created = await aws(
      "ssm",
      "create-activation",
      "--iam-role",
      "SSMServiceRole",
      "--registration-limit",
      "5",
      "--default-instance-name",
      "cli-node",
      "--tags",
      "Key=Pool,Value=cli",
    );
    expect(created.code).toBe(0);
    const { ActivationId, ActivationCode } = JSON.parse(created.stdout) as {
      ActivationId: string;
      ActivationCode: string;
    };
    expect(ActivationCode).toMatch(/^[A-Za-z0-9+/]{20}$/);

    const described = await aws(
      "ssm",
      "describe-activations",
      "--filters",
      `FilterKey=ActivationIds,FilterValues=${ActivationId}`,
    );
    expect(described.code).toBe(0);
    const list = (JSON.parse(described.stdout) as { ActivationList: Record<string, unknown>[] })
      .ActivationList;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      ActivationId,
      IamRole: "SSMServiceRole",
      RegistrationLimit: 5,
      RegistrationsCount: 0,
      DefaultInstanceName: "cli-node",
      Expired: false,
      Tags: [{ Key: "Pool", Value: "cli" }],
    });
    expect(emulator.controls.counters()["ssm:DescribeActivations"]).toBe(1);
  });

  it.concurrent("reports a constraint violation the way the CLI reports AWS errors", async ({ expect }) => {
    const refused = await aws("ssm", "create-activation", "--iam-role", "R", "--registration-limit", "1001");
    expect(refused.code).toBe(254);
    expect(refused.stderr).toContain("(ValidationException) when calling the CreateActivation operation");
  });

  it.concurrent("aws dynamodb list-tables and scan", async ({ expect }) => {
    // The table comes from the SDK: every CLI start costs seconds, and creating it isn't what's tested here.
    const sdk = local.rawDynamoDb();
    try {
      await sdk.send(
        new CreateTableCommand({
          TableName: "cli-table",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      await sdk.send(new PutItemCommand({ TableName: "cli-table", Item: { pk: { S: "a" } } }));
    } finally {
      sdk.destroy();
    }
    const [tables, scan] = await Promise.all([
      aws("dynamodb", "list-tables"),
      aws("dynamodb", "scan", "--table-name", "cli-table"),
    ]);
    expect(JSON.parse(tables.stdout)).toEqual({ TableNames: ["cli-table"] });
    expect(JSON.parse(scan.stdout)).toMatchObject({ Count: 1, Items: [{ pk: { S: "a" } }] });
  });
});
