/**
 * `npm run bench`: a fleet of simulated servers bursts onto the broker over HTTP, each fetching a
 * pair and registering it through the emulated SSM's RegisterManagedInstance, as the agent does.
 * Two shapes: one broker process (bench/broker-process.ts, as `npm start` runs), or with
 * `--containers K` the Lambda shape (bench/lambda-shape.ts: K frozen-between-invocations
 * containers of the real Lambda handler behind an API Gateway and Lambda Invoke stand-in).
 * See docs/performance.md for what each number means; `--help` for the options.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { createAwsClients } from "../src/aws/clients";
import { ensurePoolTable } from "../src/aws/dynamodb-table";
import { LOCAL_MODE_LIMITS } from "../src/entry/local-stack";
import { activationQuotas, PARAMETER_STORE_QUOTAS, type SsmQuota } from "../emulator/ssm-quotas";
import { costPerThousand, fixedMonthly, FREE_NOTE, PRICES_CHECKED } from "./aws-prices";
import { AWS_LATENCY_PROFILES, emulatorLatencyFaults, type LatencyProfile } from "./aws-latency";
import { measureColdStart, type ColdStartResult } from "./lambda-cold-start";
import { type LambdaShape, type LambdaShapeCounters, startLambdaShape } from "./lambda-shape";
import { measureStoreCeiling } from "./store-ceiling";
import {
  httpCall,
  keepAliveAgent,
  latencySummary,
  sleep,
  startBrokerProcess,
  startEmulatorProcess,
  table,
} from "./support";

const REGION = "us-east-1";
const TABLE = "activation-broker-bench";
const SAFETY_MARGIN_MINUTES = 60;
const EXPIRATION_HOURS = 24;
/** Far enough to put every activation of the run inside its safety margin, not past its expiry. */
const CLOCK_JUMP_MS = (EXPIRATION_HOURS * 60 - SAFETY_MARGIN_MINUTES / 2) * 60_000;
/** Like agent/install.sh: honour Retry-After, else full-jitter backoff, give up after 300 s. */
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30_000;
const MAX_WAIT_MS = 300_000;
/**
 * A burst stops starting servers after this long, and its servers stop retrying: on an overloaded
 * machine a run still ends, with the servers it did not serve counted as failed (RUN_BOUND_REASON).
 */
const RUN_BOUND_MS = 8 * 60_000;
const RUN_BOUND_REASON = "run time bound (8 min) passed";
/** The SSM Agent retries TooManyUpdates (and only that service error) when registering. */
const REGISTER_ATTEMPTS = 5;
const AGENT_KEY =
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6trOB1iX6Pyh/Tx8yGw0Gql4KMhq7OCHVwcwlv2yMgI/oAyx1pa3JlQoiVNi43MvYl93NpmcUT2peBI9i971y04phpsnJvYGclvKA2ChDrazLOYXX2wi1f5lMpHGyxXQeRHRVeMX3PGxmWSelmu4SQ2XwV5ZglWMLxVrNYNlTwtvVv8sPIWG2bBEIwd17Qd2BeZhZrJ0dXq+nzwOKVjP8Gd5qrX+fMJ/8on7o9qaHRPRweeQCMYHI06vbbmu9IW24gqwZKsXD3TDLv5Jv/HumB+wXiYi1HWB/p2O91ov3yC4i147XiYtECCzUziWnVUrN5ahAgOSTrOeYYvs8GnIXQIDAQAB";
/** The broker's own SSM operations; faults hit these, never the simulated agents' registrations. */
const BROKER_SSM_OPERATIONS = [
  "CreateActivation",
  "PutParameter",
  "GetParameters",
  "DeleteActivation",
  "DeleteParameter",
];

const USAGE = `Usage: npm run bench -- [options]

A burst of simulated servers onto the broker, on the local emulated AWS; one run per limit, then
the steady-state runs, the store's ceiling and the Lambda handler's cold start.

  --servers N             simulated servers per run (default 5000)
  --concurrency C         servers in flight at once (default 200)
  --limits L,...          one burst per registration limit, each on its own pool (default 10,1000)
  --steady C,...          more runs at the largest of --limits, one per concurrency; a concurrency
                          equal to --concurrency is skipped, that run is already done (default 1,50)
  --containers K          the Lambda shape: K containers of the real Lambda handler, one invocation
                          at a time each, frozen in between, standby refills through the Lambda
                          Invoke API stand-in (default: one broker process, as npm start runs)
  --aws-latency PROFILE   add each AWS operation's latency from a profile (bench/aws-latency.ts:
                          ${Object.keys(AWS_LATENCY_PROFILES).join(", ")})
  --latency-ms MS         add the same latency to every DynamoDB call and the broker's SSM calls
  --ssm-throttle-rate R   share of the broker's SSM calls answered ThrottlingException
  --cold-pool             start each run from a pool with no activation (default: one warm-up vend)
  --clock-jump            move the clocks across the activations' expiry mid-run (one process only)
  --no-standby            the pools turn the standby off: rotation on request
  --dynamodb-item-wcu N   each DynamoDB item takes at most N write units per second, then writes
                          to it are throttled (ProvisionedThroughputExceededException); AWS's
                          per-partition figure is 1000, scaled to this machine: docs/performance.md
  --dynamodb-serial-ms MS each request on a DynamoDB item holds it MS ms, one at a time (a store
                          that serves one request at a time per item)
  --ssm-quotas TIER       SSM request quotas: "standard" or "higher" Parameter Store throughput
                          (emulator/ssm-quotas.ts has the documented figures)
  --ssm-activation-rps N  a quota of N calls/s each for CreateActivation, DescribeActivations and
                          DeleteActivation (AWS publishes none; default: none)
  --rotation-wait-seconds S
                          the broker's BROKER_ROTATION_WAIT_SECONDS (default: the broker's, 5): how
                          long a request waits for a rotation before answering 503 (again from
                          each commit it sees, up to 15 s)
  --label NAME            names the results file bench/results/<date>-NAME.json (default "run")
  --cold-start-samples N  processes for the cold-start measurement (default 5)
  --help                  this text`;

class UsageError extends Error {}

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      servers: { type: "string", default: "5000" },
      concurrency: { type: "string", default: "200" },
      limits: { type: "string", default: "10,1000" },
      steady: { type: "string", default: "1,50" },
      containers: { type: "string" },
      "aws-latency": { type: "string" },
      "ssm-throttle-rate": { type: "string" },
      "latency-ms": { type: "string" },
      "cold-pool": { type: "boolean", default: false },
      "clock-jump": { type: "boolean", default: false },
      "no-standby": { type: "boolean", default: false },
      "dynamodb-item-wcu": { type: "string" },
      "dynamodb-serial-ms": { type: "string" },
      "ssm-quotas": { type: "string" },
      "ssm-activation-rps": { type: "string" },
      "rotation-wait-seconds": { type: "string" },
      label: { type: "string", default: "run" },
      "cold-start-samples": { type: "string", default: "5" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  return values;
}

let args: ReturnType<typeof parseCommandLine>;
try {
  args = parseCommandLine();
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const positive = (name: string, raw: string): number => {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number`);
  return value;
};
const whole = (name: string, raw: string): number => {
  const value = positive(name, raw);
  if (!Number.isInteger(value)) throw new UsageError(`--${name} must be a whole number`);
  return value;
};
const list = (name: string, raw: string) => (raw === "" ? [] : raw.split(",").map((v) => whole(name, v)));

let servers: number;
let concurrency: number;
let limits: number[];
let steady: number[];
let containers: number | undefined;
let latencyProfile: LatencyProfile | undefined;
let throttleRate: number | undefined;
let latencyMs: number | undefined;
let rotationWaitSeconds: number | undefined;
/** What the emulator is told before each run (POST /_emulator/limits); empty = AWS without limits. */
const awsLimits: {
  dynamodbItemWriteUnitsPerSecond?: number;
  dynamodbItemServiceMs?: number;
  ssmQuotas?: SsmQuota[];
} = {};
try {
  servers = whole("servers", args.servers);
  concurrency = whole("concurrency", args.concurrency);
  limits = list("limits", args.limits);
  steady = list("steady", args.steady);
  if (limits.length === 0) throw new UsageError("--limits needs at least one limit");
  containers = args.containers === undefined ? undefined : whole("containers", args.containers);
  if (args["aws-latency"] !== undefined) {
    latencyProfile = AWS_LATENCY_PROFILES[args["aws-latency"]];
    if (!latencyProfile)
      throw new UsageError(
        `--aws-latency: no profile "${args["aws-latency"]}" (known: ${Object.keys(AWS_LATENCY_PROFILES).join(", ")})`,
      );
  }
  throttleRate =
    args["ssm-throttle-rate"] === undefined
      ? undefined
      : positive("ssm-throttle-rate", args["ssm-throttle-rate"]);
  if (throttleRate !== undefined && throttleRate > 1)
    throw new UsageError("--ssm-throttle-rate is a share, at most 1");
  latencyMs = args["latency-ms"] === undefined ? undefined : positive("latency-ms", args["latency-ms"]);
  if (args["dynamodb-item-wcu"] !== undefined)
    awsLimits.dynamodbItemWriteUnitsPerSecond = positive("dynamodb-item-wcu", args["dynamodb-item-wcu"]);
  if (args["dynamodb-serial-ms"] !== undefined)
    awsLimits.dynamodbItemServiceMs = positive("dynamodb-serial-ms", args["dynamodb-serial-ms"]);
  const quotas: SsmQuota[] = [];
  if (args["ssm-quotas"] !== undefined) {
    const tier = args["ssm-quotas"];
    if (tier !== "standard" && tier !== "higher")
      throw new UsageError('--ssm-quotas: "standard" or "higher"');
    quotas.push(...PARAMETER_STORE_QUOTAS[tier]);
  }
  if (args["ssm-activation-rps"] !== undefined)
    quotas.push(...activationQuotas(positive("ssm-activation-rps", args["ssm-activation-rps"])));
  if (quotas.length > 0) awsLimits.ssmQuotas = quotas;
  if (args["rotation-wait-seconds"] !== undefined) {
    rotationWaitSeconds = positive("rotation-wait-seconds", args["rotation-wait-seconds"]);
    if (rotationWaitSeconds > 25) throw new UsageError("--rotation-wait-seconds: at most 25");
  }
  whole("cold-start-samples", args["cold-start-samples"]);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(args.label))
    throw new UsageError("--label: 1 to 40 letters, digits, _ and - only");
  if (containers !== undefined && args["clock-jump"])
    throw new UsageError("--clock-jump needs the one-process shape: the Lambda handler reads the real clock");
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}

interface RunPlan {
  readonly name: string;
  readonly pool: string;
  readonly limit: number;
  readonly concurrency: number;
  readonly servers: number;
}

const plans: RunPlan[] = [];
for (const limit of limits) {
  plans.push({
    name: `L=${limit} C=${concurrency}`,
    pool: `l${limit}c${concurrency}`,
    limit,
    concurrency,
    servers,
  });
}
const largest = Math.max(...limits);
for (const c of steady) {
  if (c === concurrency) continue;
  plans.push({
    name: `L=${largest} C=${c}`,
    pool: `l${largest}c${c}`,
    limit: largest,
    concurrency: c,
    servers,
  });
}
const COLD_START_POOL = "coldstart";

const poolsEnv = JSON.stringify({
  pools: Object.fromEntries([
    ...plans.map((p) => [
      p.pool,
      {
        registrationLimit: p.limit,
        expirationHours: EXPIRATION_HOURS,
        safetyMarginMinutes: SAFETY_MARGIN_MINUTES,
        // A burst rotates ceil(N/L) times within minutes: far past the default hourly rotation
        // budget (a drain guard), which the benchmark is not measuring.
        maxActivationsPerHour: 10_000,
        standby: !args["no-standby"],
      },
    ]),
    [COLD_START_POOL, { registrationLimit: 1000 }],
  ]),
});
const brokerEnv = {
  AWS_REGION: REGION,
  BROKER_TABLE_NAME: TABLE,
  BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
  BROKER_DEPLOYMENT: "bench",
  BROKER_POOLS: poolsEnv,
  POWERTOOLS_LOG_LEVEL: "ERROR",
  ...(rotationWaitSeconds !== undefined && { BROKER_ROTATION_WAIT_SECONDS: String(rotationWaitSeconds) }),
};

interface ServerOutcome {
  registered: boolean;
  reason?: string;
  timeToPairMs?: number;
}

interface RunStats {
  done: number;
  answers: Record<string, number>;
  retries: number;
  latencies: number[];
  timeToPair: number[];
  failures: Record<string, number>;
  registered: number;
  pairsPerActivation: Map<string, number>;
  insideMargin: number;
}

/**
 * What the load generator talks to: one broker process, or the Lambda shape's API Gateway. Both
 * are measured the same way; only the Lambda shape has invocations and Lambda Invoke calls.
 */
interface Target {
  readonly url: string;
  readonly lambda?: LambdaShape;
  setClockOffset(ms: number): Promise<void>;
  /** Waits for work a run left behind to end, so it is counted in that run and not the next. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

/** Long enough for a queue of refills to drain at the slowest pace measured; a run stays bounded. */
const SETTLE_TIMEOUT_MS = 60_000;

async function startTarget(emulatorUrl: string): Promise<Target> {
  if (containers === undefined) {
    const broker = await startBrokerProcess({
      ...brokerEnv,
      // As in local mode (npm start): the load generator's thousands of servers all connect from
      // 127.0.0.1, so the per-source caps would measure themselves, not the broker.
      ...LOCAL_MODE_LIMITS,
      BENCH_EMULATOR_URL: emulatorUrl,
    });
    return {
      url: broker.url,
      setClockOffset: (ms) => broker.setClockOffset(ms),
      // A warm-up vend's background refill in the broker process: give it a moment.
      settle: () => sleep(1000),
      stop: async () => {
        broker.child.kill();
      },
    };
  }
  // On Lambda the table exists before the function runs (the CDK app makes it).
  const { dynamodb } = createAwsClients({
    region: REGION,
    endpoint: emulatorUrl,
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  await ensurePoolTable(dynamodb, TABLE);
  dynamodb.destroy();
  const lambda = await startLambdaShape({
    containers,
    env: {
      ...brokerEnv,
      AWS_ENDPOINT_URL: emulatorUrl,
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
    },
    ...(latencyProfile?.operations["lambda:Invoke"] && {
      invokeLatencyMs: latencyProfile.operations["lambda:Invoke"].ms,
    }),
  });
  return {
    url: lambda.url,
    lambda,
    setClockOffset: () => Promise.reject(new Error("the Lambda shape has no movable clock")),
    settle: async () => {
      if (!(await lambda.settled(SETTLE_TIMEOUT_MS)))
        process.stderr.write(`the Lambda shape was still busy after ${SETTLE_TIMEOUT_MS / 1000} s\n`);
    },
    stop: () => lambda.stop(),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  // The machine may be shared: the load around a run says how far its timings can be compared.
  const loadAtStart = loadavg()[0];
  const shape =
    containers === undefined ? "one broker process" : `the Lambda shape (${containers} containers)`;
  process.stderr.write(`starting the emulated AWS and ${shape} (${availableParallelism()} cores)\n`);
  const emulator = await startEmulatorProcess();
  const target = await startTarget(emulator.url).catch((error: unknown) => {
    emulator.child.kill();
    throw error;
  });
  const brokerAgent = keepAliveAgent(Math.max(...plans.map((p) => p.concurrency)));
  const emulatorAgent = keepAliveAgent(Math.max(...plans.map((p) => p.concurrency)));
  // Ctrl-C: the Lambda shape's frozen containers must not outlive the benchmark.
  const interrupted = () => {
    void target.stop().finally(() => {
      emulator.child.kill();
      process.exit(130);
    });
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let clockOffsetMs = 0;
  const control = (method: string, path: string, body?: unknown) =>
    httpCall(emulatorAgent, `${emulator.url}/_emulator/${path}`, {
      method,
      ...(body !== undefined && {
        body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" },
      }),
    }).then((a) => JSON.parse(a.body || "null") as unknown);
  const moveClocks = async (offsetMs: number) => {
    clockOffsetMs = offsetMs;
    await control("POST", "clock", { offsetSeconds: offsetMs / 1000 });
    await target.setClockOffset(offsetMs);
  };

  const results: (RunResult & { loadAverageAfter: number })[] = [];
  let ceiling: Awaited<ReturnType<typeof measureStoreCeiling>> | undefined;
  let coldStart: ColdStartResult | undefined;
  // Written after every run, so a run stopped by a time bound (or Ctrl-C) keeps the runs before it.
  const date = new Date().toISOString();
  const file = `bench/results/${date.slice(0, 19).replace(/[:T]/g, "-")}-${args.label}.json`;
  const writeReport = () => {
    const report = {
      label: args.label,
      date,
      revision: git(["rev-parse", "HEAD"]),
      dirty: git(["status", "--porcelain"]) !== "",
      machine: {
        cores: availableParallelism(),
        cpu: cpus()[0]?.model ?? "unknown",
        node: process.version,
        platform: process.platform,
        loadAverage: { start: round2(loadAtStart ?? 0), end: round2(loadavg()[0] ?? 0) },
      },
      shape: containers === undefined ? "process" : "lambda",
      /** Lambda execution environments; null for the one-process shape. */
      containers: containers ?? null,
      parameters: {
        servers,
        concurrency,
        limits,
        steady,
        throttleRate,
        latencyMs,
        awsLatency: args["aws-latency"] ?? null,
        awsLatencyMs: latencyProfile
          ? Object.fromEntries(Object.entries(latencyProfile.operations).map(([op, f]) => [op, f.ms]))
          : null,
        coldPool: args["cold-pool"],
        standby: !args["no-standby"],
        clockJump: args["clock-jump"],
        awsLimits,
        rotationWaitSeconds: rotationWaitSeconds ?? null,
      },
      prices: { checked: PRICES_CHECKED, fixedMonthlyUsd: fixedMonthly(), note: FREE_NOTE },
      runs: results,
      complete: results.length === plans.length && coldStart !== undefined,
      storeCeiling: ceiling,
      coldStart,
      totalSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    return report;
  };
  try {
    for (const plan of plans) {
      // Unless --cold-pool, a run starts from a pool that already has an activation, as a
      // deployed pool does; settling lets that first vend's refill end before counting starts.
      if (!args["cold-pool"]) await httpCall(brokerAgent, `${target.url}/activations/${plan.pool}`);
      await target.settle();
      await control("DELETE", "faults");
      if (throttleRate !== undefined) {
        for (const operation of BROKER_SSM_OPERATIONS)
          await control("POST", "faults", {
            service: "ssm",
            operation,
            kind: "throttle",
            rate: throttleRate,
          });
      }
      if (latencyMs !== undefined) {
        await control("POST", "faults", { service: "dynamodb", kind: "latency", latencyMs });
        for (const operation of BROKER_SSM_OPERATIONS)
          await control("POST", "faults", { service: "ssm", operation, kind: "latency", latencyMs });
      }
      if (latencyProfile) {
        for (const fault of emulatorLatencyFaults(latencyProfile)) await control("POST", "faults", fault);
      }
      await control("POST", "limits", awsLimits);
      await control("DELETE", "counters");
      target.lambda?.resetCounters();
      const result = await runBurst(plan, {
        brokerUrl: target.url,
        emulatorUrl: emulator.url,
        brokerAgent,
        emulatorAgent,
        clockNow: () => Date.now() + clockOffsetMs,
        ...(args["clock-jump"] && { jumpAtHalf: () => moveClocks(clockOffsetMs + CLOCK_JUMP_MS) }),
      });
      // The refills a burst asked for are part of its cost: let them run, under the same latency.
      if (target.lambda) await target.settle();
      const counters = (await control("GET", "counters")) as Record<string, number>;
      const lambdaCounters = target.lambda?.counters();
      if (lambdaCounters) counters["lambda:Invoke"] = lambdaCounters.invokeApiCalls;
      await control("DELETE", "faults");
      const usage = (await control("GET", "usage")) as Usage;
      await control("POST", "limits", {});
      const activations = (await control("GET", "activations")) as {
        activationId: string;
        registrationLimit: number;
        registrationsCount: number;
        tags: { Key: string; Value: string }[];
      }[];
      results.push({
        ...summarise(plan, result, counters, activations, lambdaCounters, usage),
        loadAverageAfter: round2(loadavg()[0] ?? 0),
      });
      writeReport();
      if (process.stderr.isTTY) process.stderr.write("\n");
      console.log(renderTable(results));
    }

    process.stderr.write("measuring the store's ceiling for one conditional write (C=50, 3 s)\n");
    ceiling = await measureStoreCeiling({
      emulatorUrl: emulator.url,
      region: REGION,
      concurrency: 50,
      durationMs: 3000,
    });

    process.stderr.write("measuring the Lambda handler's cold start\n");
    // Give the cold-start pool an activation first: a cold container normally finds one.
    await httpCall(brokerAgent, `${target.url}/activations/${COLD_START_POOL}`);
    await target.settle();
    coldStart = await measureColdStart({
      emulatorUrl: emulator.url,
      env: brokerEnv,
      pool: COLD_START_POOL,
      samples: positive("cold-start-samples", args["cold-start-samples"]),
    });
  } finally {
    await target.stop();
    emulator.child.kill();
    brokerAgent.destroy();
    emulatorAgent.destroy();
  }

  const report = writeReport();
  console.log("");
  console.log(renderTable(results));
  console.log("");
  console.log(renderCallsPerVend(results));
  console.log("");
  console.log(renderCapacityPerVend(results));
  console.log("");
  console.log(renderCost(results));
  if (containers !== undefined) {
    console.log("");
    console.log(renderInvocations(results));
  }
  if (ceiling) {
    console.log(
      `\nstore ceiling: ${ceiling.writesPerSecond} conditional writes/s on one item at C=${ceiling.concurrency}`,
    );
  }
  if (coldStart) {
    console.log(
      `Lambda cold start (process start → first answer, ${coldStart.entry}): median ${coldStart.medianMs} ms, ` +
        `max ${coldStart.maxMs} ms over ${coldStart.samplesMs.length} processes (first answer HTTP ${coldStart.firstStatus}); ` +
        `bundle ${(coldStart.bundleBytes / 1024).toFixed(0)} KiB (${(coldStart.bundleGzipBytes / 1024).toFixed(0)} KiB gzip)`,
    );
  }
  console.log(
    `\n${report.totalSeconds} s in all (load average ${report.machine.loadAverage.start} at the start, ` +
      `${report.machine.loadAverage.end} at the end); JSON in ${file}`,
  );
}

async function runBurst(
  plan: RunPlan,
  env: {
    brokerUrl: string;
    emulatorUrl: string;
    brokerAgent: ReturnType<typeof keepAliveAgent>;
    emulatorAgent: ReturnType<typeof keepAliveAgent>;
    clockNow: () => number;
    jumpAtHalf?: () => Promise<void>;
  },
): Promise<RunStats & { seconds: number }> {
  const stats: RunStats = {
    done: 0,
    answers: {},
    retries: 0,
    latencies: [],
    timeToPair: [],
    failures: {},
    registered: 0,
    pairsPerActivation: new Map(),
    insideMargin: 0,
  };
  const started = performance.now();
  // A live line on a terminal; one line every 5 s when the output is a file or a pipe.
  const tty = process.stderr.isTTY;
  const progress = setInterval(
    () => {
      const s = ((performance.now() - started) / 1000).toFixed(0);
      process.stderr.write(
        `${tty ? "\r" : ""}${plan.name}: ${stats.done}/${plan.servers} servers, ${stats.registered} registered, ` +
          `answers ${JSON.stringify(stats.answers)}, ${stats.retries} retries, ${s}s${tty ? "   " : "\n"}`,
      );
    },
    tty ? 1000 : 5000,
  );
  let next = 0;
  let jumped = false;
  const deadline = started + RUN_BOUND_MS;
  const worker = async () => {
    while (next < plan.servers && performance.now() < deadline) {
      next++;
      if (env.jumpAtHalf && !jumped && next > plan.servers / 2) {
        jumped = true;
        await env.jumpAtHalf();
      }
      const outcome = await simulateServer(plan, env, stats, deadline);
      stats.done++;
      if (outcome.registered) stats.registered++;
      else
        stats.failures[outcome.reason ?? "unknown"] = (stats.failures[outcome.reason ?? "unknown"] ?? 0) + 1;
      if (outcome.timeToPairMs !== undefined) stats.timeToPair.push(outcome.timeToPairMs);
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
  // Added to those that stopped retrying for the same reason: never-started servers failed too.
  if (stats.done < plan.servers)
    stats.failures[RUN_BOUND_REASON] = (stats.failures[RUN_BOUND_REASON] ?? 0) + plan.servers - stats.done;
  clearInterval(progress);
  return { ...stats, seconds: (performance.now() - started) / 1000 };
}

async function simulateServer(
  plan: RunPlan,
  env: Parameters<typeof runBurst>[1],
  stats: RunStats,
  deadline: number,
): Promise<ServerOutcome> {
  const began = performance.now();
  for (let attempt = 1; ; attempt++) {
    const t0 = performance.now();
    const answer = await httpCall(env.brokerAgent, `${env.brokerUrl}/activations/${plan.pool}`);
    stats.latencies.push(performance.now() - t0);
    const status = answer.status === 0 ? "network" : String(answer.status);
    stats.answers[status] = (stats.answers[status] ?? 0) + 1;
    if (answer.status === 200) {
      const pair = JSON.parse(answer.body) as {
        ActivationId: string;
        ActivationCode: string;
        ExpirationDate: string;
      };
      const timeToPairMs = performance.now() - began;
      stats.pairsPerActivation.set(
        pair.ActivationId,
        (stats.pairsPerActivation.get(pair.ActivationId) ?? 0) + 1,
      );
      if (Date.parse(pair.ExpirationDate) - env.clockNow() < SAFETY_MARGIN_MINUTES * 60_000)
        stats.insideMargin++;
      const reason = await register(env, pair);
      return reason === undefined
        ? { registered: true, timeToPairMs }
        : { registered: false, reason, timeToPairMs };
    }
    if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
      return { registered: false, reason: `broker HTTP ${answer.status}` };
    }
    const retryAfter = Number(headerOf(answer.headers, "retry-after"));
    const delay =
      (answer.status === 429 || answer.status === 503) && Number.isInteger(retryAfter) && retryAfter > 0
        ? retryAfter * 1000
        : Math.floor(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)));
    if (performance.now() - began + delay > MAX_WAIT_MS) return { registered: false, reason: "gave up" };
    if (performance.now() + delay > deadline) return { registered: false, reason: RUN_BOUND_REASON };
    stats.retries++;
    await sleep(delay);
  }
}

/** RegisterManagedInstance as the agent sends it; undefined when registered, else the reason. */
async function register(
  env: Parameters<typeof runBurst>[1],
  pair: { ActivationId: string; ActivationCode: string },
): Promise<string | undefined> {
  for (let attempt = 1; ; attempt++) {
    const answer = await httpCall(env.emulatorAgent, env.emulatorUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonSSM.RegisterManagedInstance",
      },
      body: JSON.stringify({
        ActivationCode: pair.ActivationCode,
        ActivationId: pair.ActivationId,
        Fingerprint: globalThis.crypto.randomUUID(),
        PublicKey: AGENT_KEY,
        PublicKeyType: "Rsa",
      }),
    });
    if (answer.status === 200) return undefined;
    const type =
      answer.status === 0
        ? "network"
        : ((JSON.parse(answer.body) as { __type?: string }).__type ?? `HTTP ${answer.status}`);
    if (type !== "TooManyUpdates" || attempt >= REGISTER_ATTEMPTS) return `register: ${type}`;
    await sleep(100 * attempt);
  }
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function summarise(
  plan: RunPlan,
  r: RunStats & { seconds: number },
  counters: Record<string, number>,
  activations: {
    activationId: string;
    registrationLimit: number;
    registrationsCount: number;
    tags: { Key: string; Value: string }[];
  }[],
  lambda: LambdaShapeCounters | undefined,
  usage: Usage,
) {
  const vends = r.answers["200"] ?? 0;
  const perVend = (n: number) => (vends === 0 ? null : Math.round((n / vends) * 10_000) / 10_000);
  const operations = usage.dynamodb.tables[TABLE] ?? {};
  const sum = (key: "writeUnits" | "readUnits") =>
    Object.values(operations).reduce((total, u) => total + u[key], 0);
  const items = usage.dynamodb.items
    .filter((i) => i.table === TABLE)
    .sort((a, b) => b.peakWriteUnitsPerSecond - a.peakWriteUnitsPerSecond);
  const throttledBy = (service: string) =>
    Object.entries(usage.throttled)
      .filter(([op]) => op.startsWith(`${service}:`))
      .reduce((total, [, n]) => total + n, 0);
  const answersTotal = Object.values(r.answers).reduce((a, b) => a + b, 0);
  const parameterStoreCalls = ["PutParameter", "GetParameter", "GetParameters", "DeleteParameter"].reduce(
    (total, op) => total + (counters[`ssm:${op}`] ?? 0),
    0,
  );
  const brokerCalls = Object.entries(counters).filter(([op]) => op !== "ssm:RegisterManagedInstance");
  const totalCalls = brokerCalls.reduce((sum, [, n]) => sum + n, 0);
  const own = activations.filter((a) =>
    a.tags.some((t) => t.Key === "activation-broker:pool" && t.Value === plan.pool),
  );
  return {
    name: plan.name,
    pool: plan.pool,
    limit: plan.limit,
    concurrency: plan.concurrency,
    servers: plan.servers,
    seconds: Math.round(r.seconds * 100) / 100,
    registered: r.registered,
    failed: r.failures,
    activations: {
      created: counters["ssm:CreateActivation"] ?? 0,
      live: own.length,
      // The stock the burst left: live, no server registered with it (I9 bounds it by the depth).
      unused: own.filter((a) => a.registrationsCount === 0).length,
      // A warm-up vend took slot 1 of the pool's first activation before counting began.
      optimum: args["cold-pool"]
        ? Math.ceil(plan.servers / plan.limit)
        : Math.ceil((plan.servers + 1) / plan.limit) - 1,
      overLimit: [...r.pairsPerActivation.values()].filter((n) => n > plan.limit).length,
    },
    pairsInsideMargin: r.insideMargin,
    answers: r.answers,
    clientRetries: r.retries,
    awsCallsPerVend: {
      total: vends === 0 ? null : Math.round((totalCalls / vends) * 1000) / 1000,
      byOperation: Object.fromEntries(
        brokerCalls.map(([op, n]) => [op, vends === 0 ? null : Math.round((n / vends) * 10_000) / 10_000]),
      ),
      counters,
    },
    latencyMs: latencySummary(r.latencies),
    timeToPairMs: latencySummary(r.timeToPair),
    vendsPerSecond: Math.round(vends / r.seconds),
    // What DynamoDB bills (request units, by DynamoDB's rules: emulator/capacity.ts).
    capacityPerVend: {
      writeUnits: perVend(sum("writeUnits")),
      readUnits: perVend(sum("readUnits")),
      byOperation: Object.fromEntries(
        Object.entries(operations).map(([op, u]) => [
          op,
          { writeUnits: perVend(u.writeUnits), readUnits: perVend(u.readUnits) },
        ]),
      ),
      totals: { writeUnits: sum("writeUnits"), readUnits: sum("readUnits") },
    },
    // The hottest items of the table: peak write units in one second, largest size in bytes.
    hotItems: items.slice(0, 5),
    largestItemBytes: Math.max(0, ...items.map((i) => i.largestBytes)),
    throttled: { dynamodb: throttledBy("dynamodb"), ssm: throttledBy("ssm"), byOperation: usage.throttled },
    // Dollars per 1,000 servers onboarded (bench/aws-prices.ts). The one-process shape runs on a
    // host of its own: no API Gateway or Lambda lines.
    costPer1000Servers: costPerThousand({
      servers: r.registered,
      apiRequests: lambda ? answersTotal : 0,
      lambdaInvocations: lambda ? Object.values(lambda.invocations).reduce((a, b) => a + b, 0) : 0,
      lambdaBilledMs: lambda?.billedMs ?? 0,
      writeUnits: sum("writeUnits"),
      readUnits: sum("readUnits"),
      // One KMS request per SecureString written (encrypt) or read with decryption (decrypt).
      kmsRequests:
        (counters["ssm:PutParameter"] ?? 0) +
        (counters["ssm:GetParameters"] ?? 0) +
        (counters["ssm:GetParameter"] ?? 0),
      parameterStoreCalls,
    }),
    // The Lambda shape only: invocations by kind ("http", "event:<kind>"), and what went wrong.
    lambda: lambda ?? null,
  };
}

type RunResult = ReturnType<typeof summarise>;

/** GET /_emulator/usage (emulator/controls.ts, UsageReport). */
interface Usage {
  dynamodb: {
    tables: Record<string, Record<string, { requests: number; readUnits: number; writeUnits: number }>>;
    items: {
      table: string;
      key: Record<string, unknown>;
      peakWriteUnitsPerSecond: number;
      largestBytes: number;
    }[];
  };
  throttled: Record<string, number>;
}

function renderTable(results: readonly RunResult[]): string {
  return table(
    [
      "run",
      "registered",
      "failed",
      "activations/opt",
      "unused",
      "AWS calls/vend",
      "200/429/503/other",
      "retries",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "max ms",
      "vends/s",
      "burst s",
      "WCU/vend",
      "RCU/vend",
      "peak WCU/s",
      "item B",
      "throttled ddb/ssm",
      "$/1000",
    ],
    results.map((r) => {
      const failed = Object.values(r.failed).reduce((a, b) => a + b, 0);
      const other = Object.entries(r.answers)
        .filter(([s]) => !["200", "429", "503"].includes(s))
        .reduce((a, [, n]) => a + n, 0);
      return [
        r.name,
        `${r.registered}/${r.servers}`,
        String(failed),
        `${r.activations.created}/${r.activations.optimum}`,
        String(r.activations.unused),
        String(r.awsCallsPerVend.total ?? "-"),
        `${r.answers["200"] ?? 0}/${r.answers["429"] ?? 0}/${r.answers["503"] ?? 0}/${other}`,
        String(r.clientRetries),
        String(r.latencyMs.p50),
        String(r.latencyMs.p95),
        String(r.latencyMs.p99),
        String(r.latencyMs.max),
        String(r.vendsPerSecond),
        String(r.seconds),
        String(r.capacityPerVend.writeUnits ?? "-"),
        String(r.capacityPerVend.readUnits ?? "-"),
        String(r.hotItems[0]?.peakWriteUnitsPerSecond ?? 0),
        String(r.largestItemBytes),
        `${r.throttled.dynamodb}/${r.throttled.ssm}`,
        r.costPer1000Servers.total.toFixed(4),
      ];
    }),
  );
}

function renderCallsPerVend(results: readonly RunResult[]): string {
  const operations = [...new Set(results.flatMap((r) => Object.keys(r.awsCallsPerVend.byOperation)))].sort();
  return table(
    ["AWS calls per vend", ...results.map((r) => r.name)],
    operations.map((op) => [op, ...results.map((r) => String(r.awsCallsPerVend.byOperation[op] ?? 0))]),
  );
}

function renderCapacityPerVend(results: readonly RunResult[]): string {
  const operations = [...new Set(results.flatMap((r) => Object.keys(r.capacityPerVend.byOperation)))].sort();
  return table(
    ["DynamoDB units per vend (WCU/RCU)", ...results.map((r) => r.name)],
    operations.map((op) => [
      op,
      ...results.map((r) => {
        const u = r.capacityPerVend.byOperation[op];
        return u ? `${u.writeUnits ?? "-"}/${u.readUnits ?? "-"}` : "0/0";
      }),
    ]),
  );
}

function renderCost(results: readonly RunResult[]): string {
  const lines = [
    ["API Gateway requests", "apiGateway"],
    ["Lambda requests", "lambdaRequests"],
    ["Lambda GB-seconds", "lambdaDuration"],
    ["DynamoDB request units", "dynamodb"],
    ["KMS requests", "kms"],
    ["total (standard Parameter Store throughput)", "total"],
    ["+ Parameter Store higher throughput", "parameterStoreHigherThroughput"],
  ] as const;
  const fixed = fixedMonthly();
  return `${table(
    [`USD per 1,000 servers (prices of ${PRICES_CHECKED})`, ...results.map((r) => r.name)],
    lines.map(([label, key]) => [label, ...results.map((r) => r.costPer1000Servers[key].toFixed(6))]),
  )}
fixed monthly, apart: KMS keys $${fixed.kmsKeys}, interface endpoint $${fixed.interfaceEndpoint} (${fixed.availabilityZones} AZs); ${FREE_NOTE}`;
}

function renderInvocations(results: readonly RunResult[]): string {
  const kinds = [...new Set(results.flatMap((r) => Object.keys(r.lambda?.invocations ?? {})))].sort();
  const rows = kinds.map((kind) => [
    `invocations ${kind}`,
    ...results.map((r) => String(r.lambda?.invocations[kind] ?? 0)),
  ]);
  const line = (name: string, value: (r: RunResult) => number | string) => [
    name,
    ...results.map((r) => String(value(r))),
  ];
  return table(
    ["Lambda shape", ...results.map((r) => r.name)],
    [
      ...rows,
      line("Lambda Invoke calls", (r) => r.lambda?.invokeApiCalls ?? 0),
      line("  per activation created", (r) =>
        r.activations.created === 0
          ? "-"
          : Math.round(((r.lambda?.invokeApiCalls ?? 0) / r.activations.created) * 100) / 100,
      ),
      line("function errors", (r) => r.lambda?.functionErrors ?? 0),
      line("function timeouts", (r) => r.lambda?.functionTimeouts ?? 0),
      line("API Gateway 504s", (r) => r.lambda?.integrationTimeouts ?? 0),
      line("containers replaced", (r) => r.lambda?.containerStarts ?? 0),
      line("longest queue", (r) => r.lambda?.queuePeak ?? 0),
    ],
  );
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function git(argv: string[]): string {
  try {
    return execFileSync("git", argv, { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

await main();
