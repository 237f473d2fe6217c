import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, it } from "vitest";
import { CreateTableCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { type Emulator, startEmulator } from "../../emulator/server";
import { dynamoDbClient } from "./helpers";

// The Debian package's binary, named explicitly: another `aws` on PATH may be a broken shim.
const AWS = "/usr/bin/aws";
const hasCli = existsSync(AWS);
const run = promisify(execFile);

let emulator: Emulator;
let home: string;

async function aws(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // A throw-away HOME and config, dummy keys: nothing from the developer's own AWS setup leaks in.
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    AWS_CONFIG_FILE: join(home, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_DEFAULT_REGION: emulator.region,
    AWS_PAGER: "",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  try {
    const { stdout, stderr } = await run(AWS, [...args, "--endpoint-url", emulator.url, "--output", "json"], {
      env,
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe.skipIf(!hasCli)(
  hasCli
    ? "the AWS CLI works against the emulator unchanged"
    : "skipped: install awscli (apt-get install -y awscli)",
  () => {
    beforeAll(async () => {
      emulator = await startEmulator({ port: 0, region: "eu-central-1" });
      home = mkdtempSync(join(tmpdir(), "emulator-aws-cli-"));
      writeFileSync(join(home, "config"), "[default]\n");
    });
    afterAll(async () => {
      await emulator?.close();
      if (home) rmSync(home, { recursive: true, force: true });
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
      const refused = await aws(
        "ssm",
        "create-activation",
        "--iam-role",
        "R",
        "--registration-limit",
        "1001",
      );
      expect(refused.code).toBe(254);
      expect(refused.stderr).toContain("(ValidationException) when calling the CreateActivation operation");
    });

    it.concurrent("aws dynamodb list-tables and scan", async ({ expect }) => {
      // The table comes from the SDK: every CLI start costs seconds, and creating it isn't what's tested here.
      const sdk = dynamoDbClient(emulator);
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
  },
);
