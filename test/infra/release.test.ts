import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unzipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRelease } from "../../infra/scripts/package";
import { Template as CdkTemplate } from "aws-cdk-lib/assertions";
import { acknowledgments, synthBrokerApp } from "./support";

/**
 * The CloudFormation release as a deployer gets it from `npm run package`: self-contained
 * templates, the walkthrough's parameters, clean under cfn-lint, and deployable — here on
 * moto_server's CloudFormation, driven with the real AWS CLI.
 */

const STACKS = ["ActivationBroker-Endpoint", "ActivationBroker-Key", "ActivationBroker-Api"] as const;
type Template = {
  Parameters?: Record<string, { Type: string }>;
  Rules?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
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
let released: ReturnType<typeof packageRelease>;
const template = (stack: (typeof STACKS)[number]): Template =>
  JSON.parse(readFileSync(join(dir, `${stack}.template.json`), "utf8"));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "broker-dist-"));
  released = packageRelease(dir); // synth runs cdk-nag and cfn-guard: a finding would throw here
}, 180_000);

describe("npm run package", () => {
  it("writes three templates and the function zip", () => {
    expect(released.files).toEqual([...STACKS.map((s) => `${s}.template.json`), "broker.zip"]);
    const zip = unzipSync(readFileSync(join(dir, "broker.zip")));
    expect(Object.keys(zip).sort()).toEqual(["index.js", "index.js.map"]);
  });

  it("needs no CDK bootstrap: no version parameter or rule, no asset bucket, local code", () => {
    for (const stack of STACKS) {
      const text = readFileSync(join(dir, `${stack}.template.json`), "utf8");
      expect(text).not.toMatch(/BootstrapVersion|CheckBootstrapVersion|cdk-hnb659fds|cdk-assets/);
      expect(template(stack).Rules ?? {}).toEqual({});
    }
    const fns = Object.values(template("ActivationBroker-Api").Resources).filter(
      (r) => r.Type === "AWS::Lambda::Function",
    );
    expect(fns.map((f) => f.Properties!.Code)).toEqual(["./broker.zip"]);
  });

  it("takes the walkthrough's parameters with the walkthrough's types", () => {
    const params = Object.assign({}, ...STACKS.map((s) => template(s).Parameters ?? {}));
    for (const [name, type] of Object.entries(WALKTHROUGH)) expect(params[name]?.Type, name).toBe(type);
    for (const ours of ["Pools", "LogRetentionDays", "ThrottlingRateLimit", "ReservedConcurrency"]) {
      expect(params).toHaveProperty(ours);
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

  it("is what docs/deploy.md says: every parameter and output name, no more, no less", () => {
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
    expect(column("### Parameters (CloudFormation)", 0)).toEqual(params);

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
    });
    if (r.status !== 0) throw new Error(`aws ${args.slice(0, 2).join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const createStack = (name: string, file: string, params: Record<string, string> = {}) => {
    aws(
      "cloudformation",
      "create-stack",
      "--stack-name",
      name,
      "--capabilities",
      "CAPABILITY_IAM",
      "--template-body",
      `file://${file}`,
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

  it("creates the three stacks from the packaged templates, the walkthrough's way", () => {
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

    // Steps 1 and 2: templates as packaged.
    const key = createStack("broker-key", join(dir, "ActivationBroker-Key.template.json"));
    const vpce = createStack("broker-endpoint", join(dir, "ActivationBroker-Endpoint.template.json"), {
      VpcIdForApiGateway: vpc,
      SubnetsForVpcEndpoint: subnets.join("\\,"),
      AllowedIPRange: "10.0.0.0/8",
    });
    expect(vpce.VpcEndpointForApiGateway).toMatch(/^vpce-/);

    // Step 3: what `aws cloudformation package --s3-bucket` does — upload the zip, point Code at
    // it. (Debian's CLI 2.9 cannot send `package`'s S3 upload to a local endpoint.)
    aws("s3", "mb", "s3://broker-artifacts");
    aws("s3", "cp", join(dir, "broker.zip"), "s3://broker-artifacts/broker.zip");
    const api = template("ActivationBroker-Api");
    for (const r of Object.values(api.Resources)) {
      if (r.Type === "AWS::Lambda::Function")
        r.Properties!.Code = { S3Bucket: "broker-artifacts", S3Key: "broker.zip" };
    }
    const packaged = join(dir, "packaged-api.json");
    writeFileSync(packaged, JSON.stringify(api));
    const out = createStack("broker-api", packaged, {
      VpcEndpointForApiGateway: vpce.VpcEndpointForApiGateway!,
      KmsKeyId: key.KmsKeyId!,
      ApiGatewayStageName: "v1",
    });

    expect(out.InvokeUrl).toBe(`https://${out.RestApiId}.execute-api.eu-west-1.amazonaws.com/v1/`);
    expect(out.EndpointInvokeUrl).toBe(
      `https://${out.RestApiId}-${vpce.VpcEndpointForApiGateway}.execute-api.eu-west-1.amazonaws.com/v1/`,
    );
    expect(out.ParameterPrefix).toBe("/activation-broker/broker-api");
    const code = aws(
      "lambda",
      "get-function",
      "--function-name",
      out.FunctionName!,
      "--query",
      "Configuration.Runtime",
    );
    expect(code).toBe("nodejs24.x");
  }, 180_000);
});
