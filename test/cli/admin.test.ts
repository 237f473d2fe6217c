import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateActivationCommand } from "@aws-sdk/client-ssm";
import { buildCli } from "../../scripts/build";
import { createAwsClients } from "../../src/aws/clients";
import { aLocalStack, pools, registerNode } from "../support/local";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
const BUNDLE = "dist/test-admin-cli.mjs";
const POOLS = pools({ web: { registrationLimit: 3 }, db: {} });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The bundled CLI as an operator runs it: a separate process, configured by its environment. */
function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BUNDLE, ...args], {
      // Node's own warnings (a runtime's deprecation notices) are not the CLI's output.
      env: { PATH: process.env.PATH ?? "", AWS_EC2_METADATA_DISABLED: "true", NODE_NO_WARNINGS: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("activation-broker admin CLI against the local emulated AWS", () => {
  let stack: Stack;
  let env: Record<string, string>;
  const codes: string[] = [];
  const run = (...args: string[]) => cli(args, env);
  const vend = async (pool: string) => {
    const pair = (await (await stack.get(`/activations/${pool}`)).json()) as {
      ActivationId: string;
      ActivationCode: string;
    };
    codes.push(pair.ActivationCode);
    return pair;
  };
  /** No code may appear in any output but `get --show-code`. */
  const expectNoCode = (r: Run) => {
    for (const code of codes) expect(`${r.stdout}${r.stderr}`).not.toContain(code);
  };

  beforeAll(async () => {
    await buildCli(BUNDLE);
    stack = await aLocalStack({ BROKER_POOLS: POOLS });
    env = {
      AWS_REGION: stack.settings.region,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL: stack.emulatorUrl,
      BROKER_TABLE_NAME: stack.settings.tableName,
      BROKER_DEPLOYMENT: stack.settings.deployment,
      BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
      BROKER_POOLS: POOLS,
    };
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("--version, --help and every command's --help answer 0; usage errors answer 2", async () => {
    expect((await run("--version")).stdout).toMatch(/^activation-broker \d+\.\d+\.\d+\n$/);
    expect((await run("--help")).code).toBe(0);
    for (const command of ["status", "list", "rotate", "revoke", "cleanup", "nodes", "get"]) {
      const help = await run(command, "--help");
      expect(help.code, command).toBe(0);
      expect(help.stdout).toContain(`Usage: activation-broker ${command}`);
    }
    const unknownOption = await run("status", "--bogus");
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr.trim().split("\n")).toHaveLength(1);
    expect((await run("rotate")).code).toBe(2);
    expect((await run("nodes", "--stale", "soon")).code).toBe(2);
  });

  it("status: a table by default, JSON with --json", async () => {
    const pair = await vend("web");
    const table = await run("status");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`web\\s+${pair.ActivationId}\\s+1/3\\s+0\\s+23h 59m\\s+free`));
    expect(table.stdout).toMatch(/db\s+\(none yet\)/);
    expect(table.stdout).toContain("0 of 1000 (standard tier)");
    const json = JSON.parse((await run("status", "web", "--json")).stdout) as {
      pools: { pool: string; issued: number; limit: number }[];
    };
    expect(json.pools).toEqual([expect.objectContaining({ pool: "web", issued: 1, limit: 3 })]);
    expectNoCode(table);
  });

  it("refuses an unknown pool with one line and exit 3", async () => {
    for (const args of [
      ["status", "nope"],
      ["rotate", "nope"],
      ["revoke", "nope"],
      ["get", "nope"],
    ]) {
      const r = await run(...args);
      expect(r.code, args.join(" ")).toBe(3);
      expect(r.stderr).toBe(`activation-broker ${args[0]}: Pool 'nope' is not configured.\n`);
      expect(r.stdout).toBe("");
    }
    const unknownId = await run("revoke", "00000000-0000-4000-8000-000000000000");
    expect(unknownId.code).toBe(3);
  });

  it("without credentials: one line, exit 4", async () => {
    const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...rest } = env;
    const r = await cli(["status"], {
      ...rest,
      AWS_CONFIG_FILE: "/nonexistent/config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials",
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^activation-broker status: no AWS credentials found: .*\n$/);
  });

  it("with the emulated AWS down: one line, exit 5", async () => {
    const r = await run("list", "--endpoint-url", "http://127.0.0.1:9");
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      /^activation-broker list: cannot reach AWS at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\).*\n$/,
    );
  });

  it("get hides the code unless --show-code, and only then prints it", async () => {
    const hidden = await run("get", "db");
    expect(hidden.code).toBe(0);
    expect(hidden.stdout).toContain("(hidden; pass --show-code)");
    const shown = JSON.parse((await run("get", "--show-code", "db", "--json")).stdout) as {
      ActivationId: string;
      ActivationCode: string;
    };
    expect(shown.ActivationCode).toMatch(/^[A-Za-z0-9+/]{20}$/);
    expect((await registerNode(stack.emulatorUrl, shown)).status).toBe(200);
    codes.push(shown.ActivationCode);
  });

  it("rotate switches the pool to a fresh activation; list shows the old one as spent", async () => {
    const before = await vend("web");
    const r = await run("rotate", "web");
    expect(r.code).toBe(0);
    const after = await vend("web");
    expect(after.ActivationId).not.toBe(before.ActivationId);
    expect(r.stdout).toContain(`now hands out activation ${after.ActivationId}`);
    const listed = JSON.parse((await run("list", "--json")).stdout) as {
      activationId: string;
      state: string;
    }[];
    const state = Object.fromEntries(listed.map((a) => [a.activationId, a.state]));
    expect(state[before.ActivationId]).toBe("spent");
    expect(state[after.ActivationId]).toBe("current");
    expectNoCode(r);
  });

  it("revoke by id and by pool; cleanup and nodes report, --apply acts", async () => {
    await vend("db");
    const web = await vend("web");
    expect((await registerNode(stack.emulatorUrl, web)).status).toBe(200);
    const byId = await run("revoke", web.ActivationId);
    expect(byId.code).toBe(0);
    expect(byId.stdout).toContain("Nodes already registered with it stay registered (SSM counted 1)");
    expect(byId.stdout).toContain(`activation-broker nodes --activation ${web.ActivationId}`);
    const nodes = JSON.parse((await run("nodes", "--activation", web.ActivationId, "--json")).stdout) as {
      nodes: { activationId: string }[];
    };
    expect(nodes.nodes).toHaveLength(1);
    expect((await vend("web")).ActivationId).not.toBe(web.ActivationId);

    // A revoke whose DeleteActivation keeps failing: one line, exit 5, and the janitor finishes it.
    stack.emulator.controls.injectFault({
      service: "ssm",
      operation: "DeleteActivation",
      kind: "error",
      count: 3,
    });
    const failed = await run("revoke", "db");
    expect(failed.code).toBe(5);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    const dry = await run("cleanup");
    expect(dry.stdout).toMatch(/delete\s+activation\s+\S+\s+revoked\s+revoked by an operator/);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Dry run: nothing was changed");
    const applied = JSON.parse((await run("cleanup", "--apply", "--json")).stdout) as { applied: boolean };
    expect(applied.applied).toBe(true);
    expect((await run("cleanup")).stdout).toBe("Nothing to clean up.\n");
    for (const r of [dry, byId]) expectNoCode(r);
  });

  it("nodes deregister removes this deployment's nodes by id, and only those", async () => {
    const pair = await vend("web");
    const registered = await registerNode(stack.emulatorUrl, pair);
    const id = registered.body.InstanceId!;
    const listed = async () =>
      (JSON.parse((await run("nodes", "--json")).stdout) as { nodes: { instanceId: string }[] }).nodes.map(
        (n) => n.instanceId,
      );
    expect(await listed()).toContain(id);

    const stranger = "mi-0123456789abcdef0";
    const result = await run("nodes", "deregister", id, stranger, "--json");
    expect(result.code, result.stderr).toBe(3);
    expect(JSON.parse(result.stdout)).toEqual([
      { instanceId: id, result: "deregistered" },
      { instanceId: stranger, result: "not this deployment's node" },
    ]);
    expect(await listed()).not.toContain(id);

    const malformed = await run("nodes", "deregister", "i-0123");
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toBe(
      "activation-broker nodes: 'i-0123' is not a managed node id (mi- and 17 hexadecimal digits)\n",
    );
    expect((await run("nodes", "deregister")).code).toBe(2);
    expectNoCode(result);
  });

  it("shows progress on stderr while paging, and keeps stdout the answer", async () => {
    // 60 foreign activations make DescribeActivations page (50 a page).
    const { ssm } = createAwsClients({
      region: env.AWS_REGION!,
      endpoint: stack.emulatorUrl,
      credentials: { accessKeyId: "l", secretAccessKey: "l" },
    });
    await Promise.all(
      Array.from({ length: 60 }, () => ssm.send(new CreateActivationCommand({ IamRole: "R" }))),
    );
    ssm.destroy();
    const r = await run("list", "--json");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/DescribeActivations: page 2, \d+ so far/);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });
});

describe("revocation across processes (I8)", () => {
  let stack: Stack;
  const brokers: ChildProcess[] = [];

  afterAll(async () => {
    for (const b of brokers) b.kill("SIGTERM");
    await stack?.close();
  });

  async function serve(env: Record<string, string>): Promise<string> {
    const proc = spawn(process.execPath, [BUNDLE, "serve", "--port", "0"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    brokers.push(proc);
    for await (const line of createInterface({ input: proc.stdout! })) {
      const entry = JSON.parse(line) as { message: string; port?: number };
      if (entry.message === "broker listening") return `http://127.0.0.1:${entry.port}`;
    }
    throw new Error("broker did not start");
  }

  it("two warm brokers on one table both stop handing out a revoked activation on their next request", async () => {
    await buildCli(BUNDLE);
    stack = await aLocalStack({ BROKER_POOLS: POOLS });
    const env = {
      AWS_REGION: stack.settings.region,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL: stack.emulatorUrl,
      BROKER_TABLE_NAME: stack.settings.tableName,
      BROKER_DEPLOYMENT: stack.settings.deployment,
      BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
      BROKER_POOLS: pools({ web: { registrationLimit: 100 } }),
    };
    const [a, b] = await Promise.all([serve(env), serve(env)]);
    const get = async (url: string) =>
      (await (await fetch(`${url}/activations/web`)).json()) as {
        ActivationId: string;
        ActivationCode: string;
      };
    // Warm: both have the current activation's code in their cache.
    const first = await get(a!);
    const second = await get(b!);
    expect(second.ActivationId).toBe(first.ActivationId);
    stack.emulator.controls.resetCounters();
    expect((await get(b!)).ActivationId).toBe(first.ActivationId);
    expect(stack.emulator.controls.counters()["ssm:GetParameter"]).toBeUndefined(); // served from cache

    const revoked = await cli(["revoke", "web"], env);
    expect(revoked.code).toBe(0);

    const nextA = await get(a!);
    const nextB = await get(b!);
    for (const next of [nextA, nextB]) {
      expect(next.ActivationId).not.toBe(first.ActivationId);
      expect(next.ActivationCode).not.toBe(first.ActivationCode);
    }
    expect(nextB.ActivationId).toBe(nextA.ActivationId);
    expect(stack.emulator.controls.activations().map((x) => x.activationId)).not.toContain(
      first.ActivationId,
    );
    expect((await registerNode(stack.emulatorUrl, first)).body.__type).toBe("InvalidActivation");
    expect((await registerNode(stack.emulatorUrl, nextA)).status).toBe(200);
  });
});
