/**
 * What the Terraform tests run for real: the terraform CLI, the hashicorp/aws provider from a
 * local filesystem mirror (no registry, no network), and moto_server as the AWS it applies to.
 * Each piece is found once; the tests skip, saying which is missing, when one is absent.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

export const REPO_ROOT = join(import.meta.dirname, "..", "..", "..");
export const MODULE_DIR = join(REPO_ROOT, "deploy", "terraform");

/** The folder that holds registry.terraform.io/hashicorp/aws/<version>/ (TF_PROVIDER_MIRROR). */
export const PROVIDER_MIRROR = process.env.TF_PROVIDER_MIRROR ?? "/opt/tf-plugins";

/** "" when terraform, the provider mirror and moto_server are all present, else why not. */
export function missingTerraformTools(): string {
  const missing: string[] = [];
  if (spawnSync("terraform", ["version"], { stdio: "ignore" }).status !== 0) {
    missing.push("terraform (>= 1.9) on PATH");
  }
  if (!existsSync(join(PROVIDER_MIRROR, "registry.terraform.io", "hashicorp", "aws"))) {
    missing.push(
      `the hashicorp/aws provider in ${PROVIDER_MIRROR} (set TF_PROVIDER_MIRROR to the mirror folder)`,
    );
  }
  if (spawnSync("moto_server", ["--help"], { stdio: "ignore" }).status !== 0) {
    missing.push("moto_server on PATH (pip install 'moto[server]')");
  }
  return missing.length === 0 ? "" : ` — skipped: needs ${missing.join(", ")}`;
}

/** An unused loopback port (the OS picks; closed again before the caller binds it). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Moto {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * moto_server on a free loopback port. MOTO_IAM_LOAD_MANAGED_POLICIES: without it moto knows no
 * AWS managed policy, and attaching AmazonSSMManagedInstanceCore answers NoSuchEntity.
 */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child: ChildProcess = spawn("moto_server", ["-p", String(port), "-H", "127.0.0.1"], {
    env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: "true" },
    stdio: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/moto-api/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error("moto_server did not answer within 30 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * API Gateway returns a REST API's resource policy as a JSON document escaped once more inside the
 * `policy` string (`{\"Version\":…}`), and the provider unescapes it; moto 5.2 returns the plain
 * document, which the provider cannot parse ("invalid character 'S' after top-level value"),
 * failing every refresh of the API and its policy, and so `destroy` too. This proxy sits in front
 * of moto for API Gateway alone and escapes that one field of RestApi answers (GET, PATCH, list)
 * the way API Gateway does; every other byte passes through unchanged.
 */
export async function startRestApiPolicyProxy(
  target: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          const body: Buffer[] = [];
          answer.on("data", (c: Buffer) => body.push(c));
          answer.on("end", () => {
            let payload: Buffer = Buffer.concat(body);
            if (/^\/restapis(\/[^/?]+)?(\?.*)?$/.test(req.url ?? "")) payload = escapePolicies(payload);
            const headers = { ...answer.headers, "content-length": String(payload.length) };
            delete headers["transfer-encoding"];
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(payload);
          });
        },
      );
      out.on("error", (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `policy` of one RestApi or of each in a list, escaped as API Gateway sends it. */
function escapePolicies(payload: Buffer): Buffer {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString("utf8"));
  } catch {
    return payload;
  }
  const fix = (api: { policy?: unknown }) => {
    if (typeof api.policy === "string" && api.policy.startsWith("{")) {
      api.policy = JSON.stringify(api.policy).slice(1, -1);
    }
  };
  const d = doc as { policy?: unknown; item?: { policy?: unknown }[] };
  fix(d);
  for (const api of Array.isArray(d.item) ? d.item : []) fix(api);
  return Buffer.from(JSON.stringify(d), "utf8");
}

/** Services the module uses, all pointed at moto (API Gateway through the policy proxy). */
const SERVICES = ["cloudwatch", "dynamodb", "ec2", "events", "iam", "kms", "lambda", "logs", "sns", "sts"];

/** A provider block that sends every call of the module to moto, with fake credentials. */
export function motoProvider(motoUrl: string, apiGatewayUrl: string, region?: string): string {
  const endpoints = [
    `    apigateway = "${apiGatewayUrl}"`,
    ...SERVICES.map((s) => `    ${s} = "${motoUrl}"`),
  ].join("\n");
  return `provider "aws" {
${region ? `  region                      = "${region}"\n` : ""}  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
${endpoints}
  }
}
`;
}

export interface Workspace {
  /** The temporary folder holding everything below; the caller removes it. */
  readonly root: string;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Runs terraform in the example's copy; rejects with terraform's output on a non-zero exit. */
  terraform(...args: string[]): Promise<string>;
}

/**
 * A temporary copy of the module and of examples/complete, so nothing is written into the
 * repository: the example points at the copy, a CLI config names the provider mirror, and
 * override files (Terraform merges `*_override.tf` into the blocks they name) point the provider
 * at moto and give the example a VPC created in moto.
 */
export function prepareWorkspace(opts: {
  motoUrl: string;
  apiGatewayUrl: string;
  variables: Record<string, unknown>;
}): Workspace {
  const root = mkdtempSync(join(tmpdir(), "broker-tf-"));
  cpSync(MODULE_DIR, join(root, "module"), {
    recursive: true,
    filter: (src) => !src.includes(`${join(MODULE_DIR, "examples")}`) && !src.includes(".terraform"),
  });
  const dir = join(root, "complete");
  cpSync(join(MODULE_DIR, "examples", "complete"), dir, {
    recursive: true,
    filter: (src) => !/\.terraform|terraform\.tfstate/.test(src),
  });
  const main = readFileSync(join(dir, "main.tf"), "utf8");
  if (!main.includes('source = "../.."')) throw new Error("examples/complete/main.tf: module source moved");
  writeFileSync(join(dir, "main.tf"), main.replace('source = "../.."', 'source = "../module"'));

  writeFileSync(
    join(dir, "moto_override.tf"),
    `${motoProvider(opts.motoUrl, opts.apiGatewayUrl)}
module "broker" {
  vpc_id_for_api_gateway   = aws_vpc.moto.id
  subnets_for_vpc_endpoint = [aws_subnet.moto["a"].id, aws_subnet.moto["b"].id]
}
`,
  );
  writeFileSync(
    join(dir, "moto_network.tf"),
    `# The network a real deployment already has, created in moto for the test.
resource "aws_vpc" "moto" {
  cidr_block           = "10.42.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
}

resource "aws_subnet" "moto" {
  for_each          = { a = "10.42.1.0/24", b = "10.42.2.0/24" }
  vpc_id            = aws_vpc.moto.id
  cidr_block        = each.value
  availability_zone = "\${var.region}\${each.key}"
}
`,
  );
  writeFileSync(join(dir, "terraform.tfvars.json"), JSON.stringify(opts.variables, null, 2));
  const cliConfig = join(root, "cli.tfrc");
  writeFileSync(
    cliConfig,
    `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(PROVIDER_MIRROR)}\n  }\n}\n`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TF_CLI_CONFIG_FILE: cliConfig,
    TF_DATA_DIR: join(root, ".terraform-data"),
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    CHECKPOINT_DISABLE: "1",
  };
  return {
    root,
    dir,
    env,
    terraform: async (...args: string[]) => {
      try {
        const [command, ...rest] = args;
        const colored = ["init", "validate", "plan", "apply", "destroy"].includes(command!);
        const argv = [`-chdir=${dir}`, command!, ...(colored ? ["-no-color"] : []), ...rest];
        const { stdout } = await exec("terraform", argv, {
          env,
          maxBuffer: 64 * 1024 * 1024,
        });
        return stdout;
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string; message: string };
        throw new Error(`terraform ${args[0]} failed:\n${e.stderr || e.stdout || e.message}`);
      }
    },
  };
}
