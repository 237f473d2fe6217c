import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { UsageError } from "../../src/cli/args";
import { createLookupClients } from "../../src/aws/lookup-clients";
import { DeploymentNotFoundError, findTarget, stackSettings } from "../../src/cli/deployment";
import { LOCAL_ENV, npmStartRecordPath, writeNpmStartRecord } from "../../src/cli/local-deployment";

/**
 * `--stack` and `--local` as the real SDK clients speak them: a local HTTP server answers
 * CloudFormation's query protocol (XML) and Lambda's REST-JSON protocol with the answers AWS
 * gives (API reference: DescribeStacks, GetFunctionConfiguration).
 */

const STACK = "ActivationBroker-Api";
const FUNCTION = "ActivationBroker-Api-BrokerFunction4A1B2C3D-Xy12Ab34Cd56";
const FUNCTION_ENV = {
  BROKER_TABLE_NAME: "ActivationBroker-Api-PoolTable1234-ABCDEF",
  BROKER_PARAMETER_PREFIX: "/activation-broker",
  BROKER_DEPLOYMENT: "prod-eu",
  BROKER_POOLS: JSON.stringify({ pools: { web: { registrationLimit: 10 } } }),
  BROKER_LEASE_SECONDS: "30",
  POWERTOOLS_SERVICE_NAME: "activation-broker",
};

interface Stack {
  readonly outputs: Readonly<Record<string, string>>;
}

/** What the recorded AWS knows: stacks by name, functions' environments by name. */
let stacks: Record<string, Stack>;
let functions: Record<string, Record<string, string>>;
let requests: string[];
let server: Server;
let endpoint: string;

const xml = (
  outputs: Readonly<Record<string, string>>,
  name: string,
) => `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult>
    <Stacks>
      <member>
        <StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/${name}/0f1e2d3c-0000-11f0-8000-0a1b2c3d4e5f</StackId>
        <StackName>${name}</StackName>
        <CreationTime>2026-11-02T09:30:00.000Z</CreationTime>
        <StackStatus>UPDATE_COMPLETE</StackStatus>
        <Outputs>
${Object.entries(outputs)
  .map(
    ([key, value]) => `          <member>
            <OutputKey>${key}</OutputKey>
            <OutputValue>${value}</OutputValue>
          </member>`,
  )
  .join("\n")}
        </Outputs>
      </member>
    </Stacks>
  </DescribeStacksResult>
  <ResponseMetadata><RequestId>8f2c1a9e-1111-4222-8333-944455566677</RequestId></ResponseMetadata>
</DescribeStacksResponse>`;

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += String(chunk);
  return text;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void body(req).then((text) => {
      const fn = /^\/2015-03-31\/functions\/([^/]+)\/configuration$/.exec(req.url ?? "");
      if (req.method === "GET" && fn) {
        const name = decodeURIComponent(fn[1]!);
        requests.push(`lambda:GetFunctionConfiguration ${name}`);
        const variables = functions[name];
        if (!variables) {
          res.writeHead(404, {
            "content-type": "application/json",
            "x-amzn-errortype": "ResourceNotFoundException",
          });
          res.end(JSON.stringify({ Type: "User", Message: `Function not found: ${name}` }));
          return;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            FunctionName: name,
            Runtime: "nodejs24.x",
            Environment: { Variables: variables },
          }),
        );
        return;
      }
      const form = new URLSearchParams(text);
      if (req.method === "POST" && form.get("Action") === "DescribeStacks") {
        const name = form.get("StackName") ?? "";
        requests.push(`cloudformation:DescribeStacks ${name}`);
        const stack = stacks[name];
        res.writeHead(stack ? 200 : 400, { "content-type": "text/xml" });
        res.end(
          stack
            ? xml(stack.outputs, name)
            : `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error>
  <RequestId>0a1b2c3d-2222-4333-8444-955566677788</RequestId>
</ErrorResponse>`,
        );
        return;
      }
      res.writeHead(400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  stacks = { [STACK]: { outputs: { FunctionName: FUNCTION, PoolTableName: "ignored-here" } } };
  functions = { [FUNCTION]: { ...FUNCTION_ENV } };
  requests = [];
  vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "secret");
  vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
  // Each test its own temporary directory: where `npm start` records itself.
  vi.stubEnv("TMPDIR", mkdtempSync(join(tmpdir(), "deployment-test-")));
});

afterEach(() => vi.unstubAllEnvs());

/** The clients src/entry/cli.ts passes: the shared configuration, as the command line has them. */
const lookup = createLookupClients;
const at = (region: string) => createLookupClients({ region, endpoint });

describe("--stack NAME", () => {
  it("reads the broker function named by the stack's FunctionName output, and keeps only BROKER_*", async () => {
    const { POWERTOOLS_SERVICE_NAME: _notOurs, ...broker } = FUNCTION_ENV;
    expect(await stackSettings(STACK, at("eu-west-1"))).toEqual(broker);
    expect(requests).toEqual([
      `cloudformation:DescribeStacks ${STACK}`,
      `lambda:GetFunctionConfiguration ${FUNCTION}`,
    ]);
  });

  it("says when the stack does not exist", async () => {
    const failure = stackSettings("Nope-Api", at("eu-west-1"));
    await expect(failure).rejects.toBeInstanceOf(DeploymentNotFoundError);
    await expect(failure).rejects.toThrow("stack Nope-Api does not exist in this account and Region");
  });

  it("says which stack to name when the stack has no FunctionName output", async () => {
    stacks["ActivationBroker-Key"] = { outputs: { KmsKeyId: "1234abcd-12ab-34cd-56ef-1234567890ab" } };
    await expect(stackSettings("ActivationBroker-Key", at("eu-west-1"))).rejects.toThrow(
      "stack ActivationBroker-Key has no FunctionName output: name the broker's Api stack (e.g. ActivationBroker-Api)",
    );
  });

  it("refuses a function that is not a broker (no BROKER_TABLE_NAME)", async () => {
    functions[FUNCTION] = { POWERTOOLS_SERVICE_NAME: "something-else" };
    await expect(stackSettings(STACK, at("eu-west-1"))).rejects.toThrow(
      `function ${FUNCTION} (output FunctionName of stack ${STACK}) has no BROKER_TABLE_NAME`,
    );
  });

  it("lets a BROKER_* variable that is set override the stack's, and --region choose the Region", async () => {
    const target = await findTarget(
      { stack: STACK, region: "eu-west-1", "endpoint-url": endpoint },
      { AWS_REGION: "us-east-1", BROKER_LEASE_SECONDS: "60" },
      lookup,
    );
    expect(target.env).toMatchObject({
      AWS_REGION: "eu-west-1",
      BROKER_TABLE_NAME: FUNCTION_ENV.BROKER_TABLE_NAME,
      BROKER_DEPLOYMENT: "prod-eu",
      BROKER_LEASE_SECONDS: "60",
    });
    expect(target.endpoint).toBe(endpoint);
    expect(target.credentials).toBeUndefined();
  });

  it("takes the Region from the environment, then the profile", async () => {
    const fromEnv = await findTarget(
      { stack: STACK, "endpoint-url": endpoint },
      { AWS_DEFAULT_REGION: "eu-central-1" },
      lookup,
    );
    expect(fromEnv.env.AWS_REGION).toBe("eu-central-1");
    // --profile reaches the clients as configuration (src/cli/context.ts), never the environment.
    const home = mkdtempSync(join(tmpdir(), "deployment-profile-"));
    writeFileSync(
      join(home, "config"),
      "[default]\nregion = us-west-2\n\n[profile far]\nregion = ap-southeast-2\n",
    );
    // A named profile brings its own keys: the SDK, like the AWS CLI, then skips the environment's.
    writeFileSync(
      join(home, "credentials"),
      "[far]\naws_access_key_id = AKIDFAR\naws_secret_access_key = far\n",
    );
    vi.stubEnv("AWS_CONFIG_FILE", join(home, "config"));
    vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(home, "credentials"));
    vi.stubEnv("AWS_REGION", undefined);
    vi.stubEnv("AWS_DEFAULT_REGION", undefined);
    const fromProfile = await findTarget({ stack: STACK, "endpoint-url": endpoint }, {}, (where) =>
      createLookupClients({ ...where, profile: "far" }),
    );
    expect(fromProfile.env.AWS_REGION).toBe("ap-southeast-2");
    expect(process.env.AWS_PROFILE).toBeUndefined();
    const fromDefault = await findTarget({ stack: STACK, "endpoint-url": endpoint }, {}, lookup);
    expect(fromDefault.env.AWS_REGION).toBe("us-west-2");
  });
});

describe("--local", () => {
  const record = (pid: number) => ({
    pid,
    brokerUrl: "http://127.0.0.1:41000",
    emulatorUrl: "http://127.0.0.1:41001",
    env: { ...LOCAL_ENV, BROKER_POOLS: "/home/me/pools.json" },
  });

  it("without a running npm start says so, naming where it looked", async () => {
    const failure = findTarget({ local: true }, {}, lookup);
    await expect(failure).rejects.toBeInstanceOf(DeploymentNotFoundError);
    await expect(failure).rejects.toThrow(
      `no running \`npm start\` found (it records itself in ${npmStartRecordPath()})`,
    );
  });

  it("uses what the running npm start recorded: its emulated AWS, its settings, local credentials", async () => {
    writeNpmStartRecord(record(process.pid));
    const target = await findTarget(
      { local: true },
      { AWS_REGION: "eu-west-1", BROKER_LEASE_SECONDS: "45" },
      lookup,
    );
    expect(target).toEqual({
      env: { ...record(process.pid).env, BROKER_LEASE_SECONDS: "45" },
      endpoint: "http://127.0.0.1:41001",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  });

  it("ignores the record of an npm start that is gone (killed without its cleanup)", async () => {
    writeFileSync(npmStartRecordPath(), JSON.stringify(record(2 ** 22 + 12345)));
    await expect(findTarget({ local: true }, {}, lookup)).rejects.toBeInstanceOf(DeploymentNotFoundError);
  });

  it("EMULATOR_PORT names the emulated AWS; without a record the settings are a plain npm start's", async () => {
    const target = await findTarget({ local: true }, { EMULATOR_PORT: "4599" }, lookup);
    expect(target.endpoint).toBe("http://127.0.0.1:4599");
    expect(target.env).toEqual(LOCAL_ENV);
    await expect(findTarget({ local: true }, { EMULATOR_PORT: "http://x" }, lookup)).rejects.toThrow(
      "EMULATOR_PORT must be a port number (1-65535), got 'http://x'",
    );
  });

  it("refuses --stack with --local", async () => {
    await expect(findTarget({ local: true, stack: STACK }, {}, lookup)).rejects.toBeInstanceOf(UsageError);
  });
});
