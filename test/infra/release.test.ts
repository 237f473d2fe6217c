import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { builtinModules } from "node:module";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Template as CdkTemplate } from "aws-cdk-lib/assertions";
import { MAX_TEMPLATE_BYTES, packageRelease } from "../../infra/scripts/package";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { acknowledgments, synthBrokerApp } from "./support";
import { namesOn } from "../../src/settings-schema";

/**
 * The CloudFormation release as a deployer gets it from `npm run package`: self-contained
 * templates with the functions' code inline, the walkthrough's parameters, the CDK app's janitor
 * and alarms, clean under cfn-lint, and deployable from template URLs alone — here on
 * moto_server's CloudFormation, driven with the real AWS CLI.
 */

const STACKS = ["ActivationBroker-Endpoint", "ActivationBroker-Key", "ActivationBroker-Api"] as const;
interface Parameter {
  Type: string;
  Description?: string;
  AllowedPattern?: string;
  MinValue?: number;
  Default?: unknown;
}
interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  Condition?: string;
}
type Template = {
  Metadata?: Record<string, unknown>;
  Parameters?: Record<string, Parameter>;
  Conditions?: Record<string, unknown>;
  Rules?: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Outputs?: Record<string, unknown>;
};

/** The reference walkthrough's parameters and their types. */
const WALKTHROUGH: Record<string, string> = {
  VpcIdForApiGateway: "AWS::EC2::VPC::Id",
  SubnetsForVpcEndpoint: "List<AWS::EC2::Subnet::Id>",
  AllowedIPRange: "String",
  ApiGatewayStageName: "String",
  KmsKeyId: "String",
  VpcEndpointForApiGateway: "String",
  CloudwatchLogRoleArn: "String",
};

const onPath = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const repoRoot = join(import.meta.dirname, "..", "..");

let dir: string;
let released: Awaited<ReturnType<typeof packageRelease>>;
const template = (stack: (typeof STACKS)[number]): Template =>
  JSON.parse(readFileSync(join(dir, `${stack}.template.json`), "utf8"));
const resourcesOf = (t: Template, type: string) =>
  Object.entries(t.Resources).filter(([, r]) => r.Type === type);
const functionsOf = (t: Template) => resourcesOf(t, "AWS::Lambda::Function").map(([, r]) => r);
/** The broker's function is the one API Gateway invokes; the janitor's, the one EventBridge does. */
const zipFileOf = (t: Template, logicalIdStart: string): string => {
  const [, fn] = resourcesOf(t, "AWS::Lambda::Function").find(([id]) => id.startsWith(logicalIdStart))!;
  return (fn.Properties!.Code as { ZipFile: string }).ZipFile;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "broker-dist-"));
  released = await packageRelease(dir); // synth runs cdk-nag and cfn-guard: a finding would throw here
}, 240_000);

describe("npm run package", () => {
  it("writes three templates and nothing else, none over the console's 1 MB", () => {
    expect(released.files).toEqual(STACKS.map((s) => `${s}.template.json`));
    for (const file of released.files) {
      expect(readFileSync(join(dir, file)).length, file).toBeLessThanOrEqual(MAX_TEMPLATE_BYTES);
    }
    console.log(`template sizes (bytes): ${JSON.stringify(released.sizes)}`);
  });

  it("needs no CDK bootstrap and no bucket: both functions' code is inline, CommonJS index.js", () => {
    for (const stack of STACKS) {
      const text = readFileSync(join(dir, `${stack}.template.json`), "utf8");
      expect(text).not.toMatch(/BootstrapVersion|CheckBootstrapVersion|cdk-hnb659fds|cdk-assets/);
      expect(text).not.toMatch(/"S3Bucket"|"S3Key"|broker\.zip/);
      expect(template(stack).Rules ?? {}).toEqual({});
    }
    const fns = functionsOf(template("ActivationBroker-Api"));
    expect(fns).toHaveLength(2);
    for (const fn of fns) {
      expect(fn.Properties).toMatchObject({ Handler: "index.handler", Runtime: "nodejs24.x" });
      expect(Object.keys(fn.Properties!.Code as object)).toEqual(["ZipFile"]);
    }
    expect(zipFileOf(template("ActivationBroker-Api"), "BrokerFunction")).toBe(released.code.broker);
    expect(zipFileOf(template("ActivationBroker-Api"), "JanitorFunction")).toBe(released.code.janitor);
  });

  it("loads nothing from outside index.js but Node's own modules and the runtime's SDK clients", () => {
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    for (const code of [released.code.broker, released.code.janitor]) {
      const required = new Set([...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!));
      const outside = [...required].filter((m) => !builtins.has(m));
      expect(outside.length).toBeGreaterThan(0);
      for (const m of outside) expect(m).toMatch(/^@aws-sdk\/client-(ssm|dynamodb|lambda)$/);
      // The source map stays out of the inline copy; so does every zod locale but English.
      expect(code).not.toMatch(/sourceMappingURL/);
    }
  });

  it("takes the walkthrough's parameters with the walkthrough's types, each described and in the form", () => {
    const params = Object.assign({}, ...STACKS.map((s) => template(s).Parameters ?? {})) as Record<
      string,
      Parameter
    >;
    for (const [name, type] of Object.entries(WALKTHROUGH)) expect(params[name]?.Type, name).toBe(type);
    for (const ours of ["Pools", "LogRetentionDays", "ThrottlingRateLimit", "ReservedConcurrency"]) {
      expect(params).toHaveProperty(ours);
    }
    for (const stack of STACKS) {
      const t = template(stack);
      const names = Object.keys(t.Parameters ?? {});
      for (const n of names) expect(t.Parameters![n]!.Description?.length ?? 0, n).toBeGreaterThan(30);
      if (names.length === 0) continue;
      const form = t.Metadata?.["AWS::CloudFormation::Interface"] as {
        ParameterGroups: { Parameters: string[] }[];
        ParameterLabels: Record<string, unknown>;
      };
      // Every parameter once, in a group; the steps' outputs first, as the walkthrough asks for them.
      expect(form.ParameterGroups.flatMap((g) => g.Parameters).sort()).toEqual([...names].sort());
      expect(Object.keys(form.ParameterLabels).sort()).toEqual([...names].sort());
    }
    const apiForm = template("ActivationBroker-Api").Metadata!["AWS::CloudFormation::Interface"] as {
      ParameterGroups: { Parameters: string[] }[];
    };
    expect(apiForm.ParameterGroups[0]!.Parameters).toEqual(["VpcEndpointForApiGateway", "KmsKeyId"]);
  });

  it("accepts only IPv4 CIDRs in AllowedIPRange: octets 0-255, prefix 0-32", () => {
    const pattern = new RegExp(
      template("ActivationBroker-Endpoint").Parameters!.AllowedIPRange!.AllowedPattern!,
    );
    for (const ok of ["10.0.0.0/8", "0.0.0.0/0", "255.255.255.255/32", "192.168.10.0/24", "172.16.0.0/12"]) {
      expect(ok, ok).toMatch(pattern);
    }
    for (const bad of [
      "999.1.1.1/99",
      "256.0.0.0/8",
      "10.0.0.0/33",
      "10.0.0.0",
      "10.0.0/8",
      "010.0.0.0/8",
      "10.0.0.0/08",
      " 10.0.0.0/8",
      "10.0.0.0/8,0.0.0.0/0",
      "::/0",
    ]) {
      expect(bad, bad).not.toMatch(pattern);
    }
  });

  it("lets ReservedConcurrency=0 reserve nothing, for the broker and the janitor alike", () => {
    const api = template("ActivationBroker-Api");
    expect(api.Parameters!.ReservedConcurrency).toMatchObject({ MinValue: 0, Default: 100 });
    expect(api.Conditions!.ReservesConcurrency).toEqual({
      "Fn::Not": [{ "Fn::Equals": [{ Ref: "ReservedConcurrency" }, "0"] }],
    });
    const [broker, janitor] = ["BrokerFunction", "JanitorFunction"].map(
      (id) => resourcesOf(api, "AWS::Lambda::Function").find(([k]) => k.startsWith(id))![1],
    );
    expect(broker!.Properties!.ReservedConcurrentExecutions).toEqual({
      "Fn::If": ["ReservesConcurrency", { Ref: "ReservedConcurrency" }, { Ref: "AWS::NoValue" }],
    });
    expect(janitor!.Properties!.ReservedConcurrentExecutions).toEqual({
      "Fn::If": ["ReservesConcurrency", 1, { Ref: "AWS::NoValue" }],
    });
  });

  it("holds the janitor on its schedule with a role of its own, and at least the CDK app's alarms", () => {
    const api = template("ActivationBroker-Api");
    const cdk = CdkTemplate.fromStack(synthBrokerApp({}).stacks.broker).toJSON() as Template;
    const rules = resourcesOf(api, "AWS::Events::Rule").map(([, r]) => r.Properties!);
    expect(rules).toEqual([
      expect.objectContaining({
        ScheduleExpression: "rate(1 hour)",
        State: "ENABLED",
        Targets: [
          expect.objectContaining({
            Arn: { "Fn::GetAtt": [expect.stringMatching(/^JanitorFunction/), "Arn"] },
          }),
        ],
      }),
    ]);
    const [, janitorFn] = resourcesOf(api, "AWS::Lambda::Function").find(([id]) =>
      id.startsWith("JanitorFunction"),
    )!;
    const [, brokerFn] = resourcesOf(api, "AWS::Lambda::Function").find(([id]) =>
      id.startsWith("BrokerFunction"),
    )!;
    expect(janitorFn.Properties!.Role).not.toEqual(brokerFn.Properties!.Role);

    /** What an alarm watches: its metric, or the metrics and expression of its math. */
    const watched = (t: Template) =>
      new Set(
        resourcesOf(t, "AWS::CloudWatch::Alarm").map(([, r]) => {
          const p = r.Properties!;
          const metrics =
            (p.Metrics as { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }[]) ?? [];
          const parts = [
            p.MetricName as string | undefined,
            ...metrics.map((m) => m.MetricStat?.Metric.MetricName ?? m.Expression),
          ].filter(Boolean);
          return `${parts.join(" ")} ${String(p.ComparisonOperator)} ${String(p.Threshold)}`;
        }),
      );
    const cdkAlarms = watched(cdk);
    expect(cdkAlarms.size).toBeGreaterThanOrEqual(5);
    const releaseAlarms = watched(api);
    for (const alarm of cdkAlarms) expect(releaseAlarms, alarm).toContain(alarm);
    // Every alarm notifies the stack's topic, and its name carries the stack name.
    const topics = resourcesOf(api, "AWS::SNS::Topic").map(([id]) => id);
    expect(topics).toHaveLength(1);
    for (const [, alarm] of resourcesOf(api, "AWS::CloudWatch::Alarm")) {
      expect(alarm.Properties!.AlarmActions).toEqual([{ Ref: topics[0] }]);
      expect(JSON.stringify(alarm.Properties!.AlarmName)).toContain("${AWS::StackName}-");
    }
  });

  it("acknowledges only findings that docs/security.md lists", () => {
    const docs = readFileSync(join(repoRoot, "docs", "security.md"), "utf8");
    for (const a of acknowledgments(released.app)) {
      const id = a.id
        .replace(/^Annotation::(?=AwsSolutions-|[a-z0-9_]+$)/, "")
        .replace(/\[Resource::arn:.*:parameter\/.*\]$/, "[Resource::…:parameter/<prefix>/*]");
      expect(docs, `${a.id} at ${a.path}`).toContain(id);
    }
  });

  it("has the schema's parameters and docs/deploy.md's outputs, no more, no less", () => {
    const docs = readFileSync(join(repoRoot, "docs", "deploy.md"), "utf8");
    /** Backticked names in one column of the table under a heading. */
    const column = (heading: string, col: number): Set<string> => {
      const section = docs.slice(docs.indexOf(`${heading}\n`));
      const table = section.slice(section.indexOf("\n|")).split("\n\n")[0]!;
      const rows = table
        .split("\n")
        .filter((l) => l.startsWith("|"))
        .slice(2);
      return new Set(
        rows.flatMap((r) =>
          [...(r.split("|")[col + 1] ?? "").matchAll(/`([A-Za-z0-9]+)`/g)].map((m) => m[1]!),
        ),
      );
    };
    const params = new Set(STACKS.flatMap((st) => Object.keys(template(st).Parameters ?? {})));
    // docs/configuration.md lists the schema's parameters (test/settings-schema.test.ts).
    expect(params).toEqual(new Set(namesOn("cfn")));

    // An EKS pool, so the outputs that only EKS pools add are checked too.
    const cdk = synthBrokerApp({
      Pools: { edge: { eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/edge" } },
    });
    const outputs = new Set([
      ...STACKS.flatMap((st) => Object.keys(template(st).Outputs ?? {})),
      ...Object.values(cdk.stacks).flatMap((stack) =>
        Object.keys(CdkTemplate.fromStack(stack).findOutputs("*")),
      ),
    ]);
    for (const o of outputs) if (o.startsWith("ExportsOutput")) outputs.delete(o); // CDK's cross-stack wiring
    const documented = column("## Outputs", 1);
    documented.delete("EndpointInvokeUrl2"); // the second endpoint's alias, named in the prose
    expect(documented).toEqual(outputs);
  });

  it.skipIf(!onPath("cfn-lint"))(
    "passes cfn-lint (needs cfn-lint on PATH)",
    () => {
      const files = STACKS.map((s) => join(dir, `${s}.template.json`));
      const lint = spawnSync("cfn-lint", files, { encoding: "utf8" });
      expect(lint.stdout + lint.stderr).toBe("");
      expect(lint.status).toBe(0);
    },
    120_000,
  );
});

describe("the CDK app, for the same small accounts", () => {
  it("reserves concurrency for neither function when ReservedConcurrency is 0, for both otherwise", () => {
    const reservations = (context: Record<string, unknown>) =>
      Object.entries(
        CdkTemplate.fromStack(synthBrokerApp(context).stacks.broker).findResources("AWS::Lambda::Function"),
      )
        .map(
          ([id, r]) => [id.replace(/[0-9A-F]{8}$/, ""), r.Properties.ReservedConcurrentExecutions] as const,
        )
        .sort();
    expect(reservations({ ReservedConcurrency: "0" })).toEqual([
      ["BrokerFunction", undefined],
      ["JanitorFunction", undefined],
    ]);
    expect(reservations({})).toEqual([
      ["BrokerFunction", 100],
      ["JanitorFunction", 1],
    ]);
  });
});

/**
 * The broker's ZipFile exactly as CloudFormation lays it out — index.js in an otherwise empty
 * directory, loaded as CommonJS by a fresh `node`, `handler` called — with the SDK clients found
 * where Lambda's nodejs24.x runtime provides them (NODE_PATH), against the emulated AWS.
 */
describe("the inline code, run as Lambda runs it", () => {
  let aws: EmulatedAws;
  const TABLE = "inline-pools";
  beforeAll(async () => {
    aws = await startEmulatedAws({ region: "eu-west-1" });
    await aws.newTable(TABLE);
  });
  afterAll(async () => {
    await aws?.close();
  });

  const HARNESS = `
const { handler } = require(require("node:path").join(process.cwd(), "index.js"));
const event = JSON.parse(process.env.INLINE_EVENT);
const context = { awsRequestId: "inline-1", functionName: "broker", functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:111122223333:function:broker", memoryLimitInMB: "256",
  logGroupName: "broker", logStreamName: "broker", getRemainingTimeInMillis: () => 25000 };
handler(event, context).then((answer) => {
  process.stdout.write("\\nANSWER " + JSON.stringify(answer) + "\\n");
  process.exit(0);
}, (error) => { process.stdout.write("\\nTHROWN " + String(error) + "\\n"); process.exit(1); });
`;

  /** An API Gateway REST proxy event as a private API sends it through the VPC endpoint. */
  const PROXY_EVENT = {
    resource: "/",
    path: "/",
    httpMethod: "GET",
    headers: { Host: "abc123def4.execute-api.eu-west-1.amazonaws.com", "User-Agent": "curl/8.5.0" },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      requestId: "apigw-inline-1",
      stage: "prod",
      domainName: "abc123def4.execute-api.eu-west-1.amazonaws.com",
      resourcePath: "/",
      httpMethod: "GET",
      identity: { sourceIp: "10.1.2.3", vpceId: "vpce-0123456789abcdef0" },
    },
  };
  /** What EventBridge sends the janitor on its schedule. */
  const SCHEDULED_EVENT = {
    version: "0",
    id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "111122223333",
    time: "2026-12-03T09:00:00Z",
    region: "eu-west-1",
    resources: ["arn:aws:events:eu-west-1:111122223333:rule/janitor"],
    detail: {},
  };

  /** Runs index.js with the given environment (the emulated AWS and the function's variables). */
  const invoke = (code: string, env: Record<string, string>, event: object = PROXY_EVENT) => {
    const cwd = mkdtempSync(join(tmpdir(), "broker-inline-"));
    writeFileSync(join(cwd, "index.js"), code);
    writeFileSync(join(cwd, "harness.cjs"), HARNESS);
    return new Promise<{
      answer: { statusCode: number; body: string } & Record<string, unknown>;
      output: string;
    }>((resolve, reject) => {
      const child = spawn(process.execPath, ["harness.cjs"], {
        cwd,
        env: {
          PATH: process.env.PATH ?? "",
          NODE_PATH: join(repoRoot, "node_modules"),
          AWS_REGION: "eu-west-1",
          AWS_ENDPOINT_URL: aws.url,
          AWS_ACCESS_KEY_ID: "x",
          AWS_SECRET_ACCESS_KEY: "x",
          INLINE_EVENT: JSON.stringify(event),
          ...env,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
      child.once("exit", () => {
        const line = output.split("\n").find((l) => l.startsWith("ANSWER "));
        if (!line) return reject(new Error(`no answer from the inline code:\n${output}`));
        resolve({ answer: JSON.parse(line.slice("ANSWER ".length)), output });
      });
    });
  };
  const functionEnv = {
    BROKER_TABLE_NAME: TABLE,
    BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    BROKER_DEPLOYMENT: "inline-test",
    BROKER_POOLS: '{"pools":{}}',
    POWERTOOLS_SERVICE_NAME: "activation-broker",
    POWERTOOLS_LOG_LEVEL: "INFO",
    NODE_OPTIONS: "--enable-source-maps",
  };

  it("answers an API Gateway REST proxy event with a pair that SSM knows", async () => {
    const { answer, output } = await invoke(
      zipFileOf(template("ActivationBroker-Api"), "BrokerFunction"),
      functionEnv,
    );
    expect(answer.statusCode, output).toBe(200);
    const pair = JSON.parse(answer.body) as { ActivationId: string; ActivationCode: string; Region: string };
    expect(pair.ActivationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(pair.ActivationCode.length).toBeGreaterThanOrEqual(20);
    expect(pair.Region).toBe("eu-west-1");
    const known = await aws.rawSsm().send(
      new (await import("@aws-sdk/client-ssm")).DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [pair.ActivationId] }],
      }),
    );
    expect(known.ActivationList).toHaveLength(1);
    // The code never reaches the logs (I6): only the answer carries it.
    const logs = output
      .split("\n")
      .filter((l) => !l.startsWith("ANSWER "))
      .join("\n");
    expect(logs).toContain("rotated to a new activation");
    expect(logs).not.toContain(pair.ActivationCode);
  }, 60_000);

  it("still explains a bad setting in English, with zod's other locales left out", async () => {
    const { answer, output } = await invoke(zipFileOf(template("ActivationBroker-Api"), "BrokerFunction"), {
      ...functionEnv,
      BROKER_LEASE_SECONDS: "1",
    });
    expect(answer.statusCode).toBe(500);
    expect(output).toMatch(/broker is misconfigured/);
    expect(output).toMatch(/BROKER_LEASE_SECONDS.*(too small|>=\s*5)/i);
  }, 60_000);

  it("runs the janitor's code on its schedule: it finishes and keeps the activation that serves", async () => {
    const { answer: vended } = await invoke(
      zipFileOf(template("ActivationBroker-Api"), "BrokerFunction"),
      functionEnv,
    );
    const serving = (JSON.parse(vended.body) as { ActivationId: string }).ActivationId;
    // The janitor's environment is the broker's without the URL and the rotation wait.
    const { answer, output } = await invoke(
      zipFileOf(template("ActivationBroker-Api"), "JanitorFunction"),
      { ...functionEnv, POWERTOOLS_SERVICE_NAME: "activation-broker-janitor" },
      SCHEDULED_EVENT,
    );
    expect(answer, output).toEqual({
      deletedActivations: expect.any(Number),
      deletedParameters: expect.any(Number),
      slotThefts: 0,
      taggedNodes: 0,
      deregisteredNodes: 0,
      hybridNodes: 0,
    });
    expect(output).toContain("janitor run finished");
    const still = await aws.rawSsm().send(
      new (await import("@aws-sdk/client-ssm")).DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [serving] }],
      }),
    );
    expect(still.ActivationList).toHaveLength(1);
  }, 60_000);
});

describe.skipIf(!onPath("moto_server") || !onPath("aws"))("deployed on moto_server (needs moto)", () => {
  let moto: ChildProcess;
  let endpoint: string;
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_DEFAULT_REGION: "eu-west-1",
    AWS_PAGER: "",
  };
  const aws = (...args: string[]): string => {
    const r = spawnSync("/usr/bin/aws", ["--endpoint-url", endpoint, "--output", "text", ...args], {
      env,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`aws ${args.slice(0, 2).join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** What the console does with an uploaded template: put it in S3 and create from its URL. */
  const createStack = (name: string, file: string, params: Record<string, string> = {}) => {
    aws("s3", "cp", file, `s3://console-uploads/${name}.json`);
    aws(
      "cloudformation",
      "create-stack",
      "--stack-name",
      name,
      "--capabilities",
      "CAPABILITY_IAM",
      "--template-url",
      `https://s3.eu-west-1.amazonaws.com/console-uploads/${name}.json`,
      ...(Object.keys(params).length > 0
        ? ["--parameters", ...Object.entries(params).map(([k, v]) => `ParameterKey=${k},ParameterValue=${v}`)]
        : []),
    );
    // Not `aws cloudformation wait`: it polls every 30 s, and moto is done at once.
    for (let i = 0; i < 100; i++) {
      const status = aws(
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        name,
        "--query",
        "Stacks[0].StackStatus",
      );
      if (status === "CREATE_COMPLETE") break;
      if (!status.endsWith("_IN_PROGRESS")) throw new Error(`${name}: ${status}`);
      spawnSync("sleep", ["0.2"]);
    }
    return Object.fromEntries(
      aws(
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        name,
        "--query",
        "Stacks[0].Outputs[].[OutputKey,OutputValue]",
      )
        .split("\n")
        .map((line) => line.split("\t") as [string, string]),
    );
  };

  beforeAll(async () => {
    // Its own process group: moto_server may be a shim whose python child must go too.
    moto = spawn("moto_server", ["-p", "0"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    endpoint = await new Promise<string>((resolve, reject) => {
      let seen = "";
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
        if (m) resolve(m[1]!);
      };
      moto.stdout!.on("data", onData);
      moto.stderr!.on("data", onData);
      moto.on("exit", () => reject(new Error(`moto_server exited: ${seen}`)));
    });
  }, 30_000);
  afterAll(() => {
    if (moto?.pid) process.kill(-moto.pid, "SIGTERM");
  });

  it("creates the three stacks from the packaged templates' URLs, the walkthrough's way", () => {
    const vpc = aws("ec2", "create-vpc", "--cidr-block", "10.1.0.0/16", "--query", "Vpc.VpcId");
    const subnets = ["a", "b"].map((az, i) =>
      aws(
        "ec2",
        "create-subnet",
        "--vpc-id",
        vpc,
        "--cidr-block",
        `10.1.${i}.0/24`,
        "--availability-zone",
        `eu-west-1${az}`,
        "--query",
        "Subnet.SubnetId",
      ),
    );
    aws("s3", "mb", "s3://console-uploads");

    // The walkthrough's order: endpoint, key, API — three uploads and nothing else.
    const vpce = createStack("broker-endpoint", join(dir, "ActivationBroker-Endpoint.template.json"), {
      VpcIdForApiGateway: vpc,
      SubnetsForVpcEndpoint: subnets.join("\\,"),
      AllowedIPRange: "10.0.0.0/8",
    });
    expect(vpce.VpcEndpointForApiGateway).toMatch(/^vpce-/);
    const key = createStack("broker-key", join(dir, "ActivationBroker-Key.template.json"));
    const out = createStack("broker-api", join(dir, "ActivationBroker-Api.template.json"), {
      VpcEndpointForApiGateway: vpce.VpcEndpointForApiGateway!,
      KmsKeyId: key.KmsKeyId!,
      ApiGatewayStageName: "v1",
    });

    expect(out.InvokeUrl).toBe(`https://${out.RestApiId}.execute-api.eu-west-1.amazonaws.com/v1/`);
    expect(out.EndpointInvokeUrl).toBe(
      `https://${out.RestApiId}-${vpce.VpcEndpointForApiGateway}.execute-api.eu-west-1.amazonaws.com/v1/`,
    );
    expect(out.ParameterPrefix).toBe("/activation-broker/broker-api");
    for (const fn of [out.FunctionName!, out.JanitorFunctionName!]) {
      expect(
        aws("lambda", "get-function", "--function-name", fn, "--query", "Configuration.[Runtime,Handler]"),
      ).toBe("nodejs24.x\tindex.handler");
    }
    expect(out.AlarmTopicArn).toMatch(/^arn:aws:sns:eu-west-1:\d{12}:/);
  }, 180_000);
});
