/**
 * The fault suite: the broker's invariants after the failures a fleet actually meets.
 * - a broker process SIGKILLed at each step of a rotation and of a standby refill;
 * - SSM and DynamoDB throttling, 5xx and TooManyUpdates at random points during a burst;
 * - two broker processes on one table.
 * After each: no activation over its limit (I1), no pair inside the margin (I2), every activation
 * created is current, standby, spent or an orphan tagged for the janitor (I5, I9), and no
 * request hung past its bound.
 */
import { type ChildProcess, fork } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createAwsClients } from "../../src/aws/clients";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { SsmActivationInventory } from "../../src/aws/ssm-inventory";
import { linksOf, MAX_LINKS, standbyDepth, TAG_DEPLOYMENT, TAG_POOL } from "../../src/core/vend-policy";
import { aLocalStack, registerNode } from "../support/local";
import type { CrashPoint } from "./crashing-broker";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
type Pair = { ActivationId: string; ActivationCode: string; ExpirationDate: string };

const LIMIT = 5;
const MARGIN_MS = 60 * 60_000;
const LEASE_SECONDS = 5;
const ROTATION_WAIT_MS = 1_000;
/**
 * No request may outlast API Gateway's 29 s integration timeout: a vend waits for a rotation at
 * most ROTATION_WAIT_MS, plus its own AWS calls (with SDK retries) on a loaded two-core machine.
 */
const REQUEST_BOUND_MS = 25_000;
const BURST = 60;
const POOLS = JSON.stringify({ pools: { default: { registrationLimit: LIMIT } } });
const ENV = {
  BROKER_POOLS: POOLS,
  BROKER_LEASE_SECONDS: String(LEASE_SECONDS),
  BROKER_ROTATION_WAIT_SECONDS: String(ROTATION_WAIT_MS / 1000),
};

let stack: Stack | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  await stack?.close();
  stack = undefined;
});

/** A second broker process on the same emulated AWS and table, as a replica would be. */
function brokerProcess(s: Stack, env: Record<string, string>): ChildProcess {
  const child = fork("test/faults/crashing-broker.ts", [], {
    execArgv: ["--import", "tsx"],
    // Only what a broker reads: its BROKER_* settings and the region, never the test's env.
    env: {
      PATH: process.env.PATH ?? "",
      AWS_REGION: s.settings.region,
      BROKER_TABLE_NAME: s.settings.tableName,
      BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
      BROKER_DEPLOYMENT: s.settings.deployment,
      FAULT_EMULATOR_URL: s.emulatorUrl,
      POWERTOOLS_LOG_LEVEL: "ERROR",
      ...ENV,
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  children.push(child);
  return child;
}

/**
 * Starts a broker process that vends `vends` times one after the other and dies at `point` of
 * its `fatalCreate`-th CreateActivation: the signal it ended with, and the pairs it handed out
 * before it died.
 */
async function crashAt(
  s: Stack,
  point: CrashPoint,
  { fatalCreate, vends }: { fatalCreate: number; vends: number },
): Promise<{ signal: NodeJS.Signals | null; pairs: Pair[] }> {
  const child = brokerProcess(s, {
    FAULT_CRASH_AT: point,
    FAULT_CRASH_ON_CREATE: String(fatalCreate),
    FAULT_VENDS: String(vends),
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  const [, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("close", (code, sig) => resolve([code, sig])),
  );
  const pairs = out
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => (JSON.parse(line) as { pair: Pair }).pair);
  return { signal, pairs };
}

interface Answer {
  status: number;
  ms: number;
  pair?: Pair;
  handedAt: number;
}

/** One server: asks until it gets a pair (503/5xx are retried, like the bootstrap script). */
async function fetchPair(url: string, clock: () => number, answers: Answer[]): Promise<Pair | undefined> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const started = performance.now();
    const handedAt = clock();
    const res = await fetch(url);
    const body = (await res.json()) as Pair;
    const answer: Answer = { status: res.status, ms: performance.now() - started, handedAt };
    answers.push(answer);
    if (res.status === 200) {
      answer.pair = body;
      return body;
    }
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 150));
  }
  return undefined;
}

async function burst(urls: string[], n: number, s: Stack): Promise<{ pairs: Pair[]; answers: Answer[] }> {
  const answers: Answer[] = [];
  const got = await Promise.all(
    Array.from({ length: n }, (_, i) => fetchPair(`${urls[i % urls.length]}/`, () => s.clock.now(), answers)),
  );
  return { pairs: got.filter((p): p is Pair => p !== undefined), answers };
}

/** Registers like the SSM Agent, which retries TooManyUpdates and nothing else. */
async function register(s: Stack, pair: Pair): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const r = await registerNode(s.emulatorUrl, pair);
    if (r.body.__type !== "TooManyUpdates" || attempt >= 20) return r.status;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The invariants every case ends with. `pairs` and `answers` are the burst's; `deadPairs` what a
 * broker process handed out before it was killed: they count against the limit (I1) too.
 */
async function expectInvariants(
  s: Stack,
  burstPairs: Pair[],
  answers: Answer[],
  deadPairs: Pair[] = [],
): Promise<void> {
  await s.broker.vendor.idle();
  const pairs = [...deadPairs, ...burstPairs];
  // I1: no activation handed out past its limit, and every pair registers.
  const perActivation = new Map<string, number>();
  for (const p of pairs) perActivation.set(p.ActivationId, (perActivation.get(p.ActivationId) ?? 0) + 1);
  for (const count of perActivation.values()) expect(count).toBeLessThanOrEqual(LIMIT);
  const statuses = await Promise.all(pairs.map((p) => register(s, p)));
  expect(statuses.filter((st) => st !== 200)).toEqual([]);
  for (const a of s.emulator.controls.activations()) {
    expect(a.registrationsCount).toBeLessThanOrEqual(a.registrationLimit);
  }
  // I2: no pair inside the margin when it was handed out.
  for (const a of answers) {
    if (a.pair) expect(Date.parse(a.pair.ExpirationDate) - a.handedAt).toBeGreaterThan(MARGIN_MS);
  }
  // No request hung past its bound; every refusal was a retryable one.
  for (const a of answers) {
    expect(a.ms).toBeLessThan(REQUEST_BOUND_MS);
    expect([200, 503]).toContain(a.status);
  }
  // I5, I9: every live activation is current, standby, spent (handed out) or a tagged orphan.
  const clients = createAwsClients({
    region: s.settings.region,
    endpoint: s.emulatorUrl,
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
  });
  try {
    const store = new DynamoDbPoolStore(clients.dynamodb, s.settings.tableName);
    // Another process may still be finishing a refill: judge the pool once its lease is free.
    let row = await store.read("default");
    for (
      let i = 0;
      i < 100 && row?.leaseOwner !== undefined && (row.leaseDeadline ?? 0) > s.clock.now();
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      row = await store.read("default");
    }
    const owned = new Set(
      (await new SsmActivationInventory(clients.ssm).list())
        .filter((a) => a.tags[TAG_DEPLOYMENT] === s.settings.deployment)
        .map((a) => a.activationId),
    );
    const handedOut = new Set(pairs.map((p) => p.ActivationId));
    const orphans = [];
    const named = new Set(linksOf(row).map((l) => l.activationId));
    for (const a of s.emulator.controls.activations()) {
      if (named.has(a.activationId)) continue;
      if (handedOut.has(a.activationId) || a.registrationsCount > 0) continue; // spent
      // An orphan: never handed out, and the janitor finds it by the broker's tags.
      expect(owned.has(a.activationId)).toBe(true);
      expect(a.tags).toEqual(
        expect.arrayContaining([
          { Key: TAG_DEPLOYMENT, Value: s.settings.deployment },
          { Key: TAG_POOL, Value: "default" },
        ]),
      );
      orphans.push(a.activationId);
    }
    // A crash leaves at most what its lease holder was making: one rotation's or one refill's
    // activations, no more than a row holds.
    expect(orphans.length).toBeLessThanOrEqual(MAX_LINKS);
    // I9: apart from orphans, the unused activations are the row's stock, within its depth.
    const unused = linksOf(row).filter((l) => l.issued === 0);
    expect(unused.length).toBeLessThanOrEqual(standbyDepth(row));
    for (const l of unused) expect(handedOut.has(l.activationId)).toBe(false);
  } finally {
    clients.dynamodb.destroy();
    clients.ssm.destroy();
  }
}

const CRASH_POINTS: CrashPoint[] = ["before-create", "after-create", "after-put", "during-commit"];

/**
 * Where the dying process holds the lease. A cold standby pool's rotation creates its current
 * activation (the process's CreateActivation 1) and one standby (2) at once and commits them
 * together; it asks for no refill. The first refill comes once a reservation takes slot 1 of that
 * standby (vend LIMIT + 1) and creates the one standby missing (3).
 */
const PHASES = [
  { phase: "rotation", fatalCreate: 1, vends: 1, answered: 0, points: CRASH_POINTS },
  // The commit waits for both creations, so its crash point is the rotation's own.
  { phase: "rotation's standby", fatalCreate: 2, vends: 1, answered: 0, points: CRASH_POINTS.slice(0, 3) },
  { phase: "standby refill", fatalCreate: 3, vends: LIMIT + 1, answered: LIMIT + 1, points: CRASH_POINTS },
] as const;

describe("a broker process SIGKILLed while it holds the rotation lease", () => {
  for (const { phase, fatalCreate, vends, answered, points } of PHASES) {
    for (const point of points) {
      it(`${phase}, ${point}: the survivor takes over once the lease lapses (I3)`, async () => {
        stack = await aLocalStack(ENV);
        const dead = await crashAt(stack, point, { fatalCreate, vends });
        expect(dead.signal).toBe("SIGKILL");
        // A rotation dies before its answer; a refill runs after the vend that asked for it.
        expect(dead.pairs).toHaveLength(answered);
        // The dead holder's lease blocks at most its length: jump past it.
        stack.moveClocks(LEASE_SECONDS + 1);
        const { pairs, answers } = await burst([stack.brokerUrl], 3 * LIMIT + 2, stack);
        expect(pairs).toHaveLength(3 * LIMIT + 2);
        await expectInvariants(stack, pairs, answers, dead.pairs);
      }, 60_000);
    }
  }
});

describe("AWS failing at random points during a burst", () => {
  it("throttling, 5xx and TooManyUpdates from SSM and DynamoDB break no invariant", async () => {
    stack = await aLocalStack(ENV);
    const c = stack.emulator.controls;
    c.injectFault({ service: "ssm", operation: "CreateActivation", kind: "throttle", rate: 0.2 });
    c.injectFault({ service: "ssm", operation: "CreateActivation", kind: "error", rate: 0.1 });
    c.injectFault({ service: "ssm", operation: "PutParameter", kind: "tooManyUpdates", rate: 0.2 });
    c.injectFault({ service: "ssm", operation: "GetParameters", kind: "throttle", rate: 0.1 });
    c.injectFault({
      service: "ssm",
      operation: "RegisterManagedInstance",
      kind: "tooManyUpdates",
      rate: 0.2,
    });
    c.injectFault({ service: "dynamodb", operation: "UpdateItem", kind: "throttle", rate: 0.05 });
    c.injectFault({ service: "dynamodb", operation: "UpdateItem", kind: "error", rate: 0.05 });
    c.injectFault({ service: "dynamodb", operation: "GetItem", kind: "error", rate: 0.05 });
    const { pairs, answers } = await burst([stack.brokerUrl], BURST, stack);
    expect(pairs).toHaveLength(BURST);
    await expectInvariants(stack, pairs, answers);
    const faulted = c.counters();
    expect(faulted["ssm:CreateActivation"]).toBeGreaterThan(Math.ceil(BURST / LIMIT));
  }, 120_000);
});

describe("two broker processes on one table", () => {
  it("share the pool without over-subscribing or stranding activations", async () => {
    stack = await aLocalStack(ENV);
    const replica = brokerProcess(stack, { FAULT_MODE: "serve" });
    const port = await new Promise<number>((resolve) =>
      replica.on("message", (m: { port?: number }) => m.port && resolve(m.port)),
    );
    const { pairs, answers } = await burst([stack.brokerUrl, `http://127.0.0.1:${port}`], BURST, stack);
    expect(pairs).toHaveLength(BURST);
    await expectInvariants(stack, pairs, answers);
  }, 120_000);
});
