/**
 * The Lambda handler's cold start and bundle size. The bundle is built as the CDK app builds it
 * (bench/lambda-bundle.ts); a fresh `node` process then loads it and answers one API Gateway proxy
 * event against the emulated AWS. Cold start = the child's own clock
 * (performance.now(), whose origin is process start) when the first answer is ready.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildLambdaBundle } from "./lambda-bundle";

const ENTRIES = ["src/entry/lambda.ts", "src/http/lambda.ts"];

export interface ColdStartResult {
  readonly entry: string;
  readonly bundleBytes: number;
  readonly bundleGzipBytes: number;
  /** Process start → first answer, per fresh process, in ms. */
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly maxMs: number;
  readonly firstStatus: number;
}

const HARNESS = `
const { handler } = require(process.env.BENCH_BUNDLE);
const event = {
  httpMethod: "GET", path: process.env.BENCH_PATH, headers: { Host: "bench.local" },
  queryStringParameters: null, requestContext: { requestId: "bench-cold-start", stage: "prod", domainName: "bench.local" },
};
const context = { awsRequestId: "bench-cold-start", functionName: "bench", functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:bench", memoryLimitInMB: "256",
  logGroupName: "bench", logStreamName: "bench", getRemainingTimeInMillis: () => 25000 };
handler(event, context).then((answer) => {
  const ms = performance.now();
  process.stdout.write(JSON.stringify({ ms, status: answer.statusCode }) + "\\n");
  process.exit(0);
});
`;

export async function measureColdStart(options: {
  emulatorUrl: string;
  env: Record<string, string>;
  pool: string;
  samples?: number;
}): Promise<ColdStartResult> {
  const entry = ENTRIES.find((e) => existsSync(e));
  if (!entry) throw new Error(`no Lambda entry point found (looked for ${ENTRIES.join(", ")})`);
  const dir = mkdtempSync(join(tmpdir(), "broker-bench-"));
  try {
    const outfile = join(dir, "index.js");
    await buildLambdaBundle(entry, outfile);
    const harness = join(dir, "harness.cjs");
    writeFileSync(harness, HARNESS);
    const samplesMs: number[] = [];
    let firstStatus = 0;
    for (let i = 0; i < (options.samples ?? 5); i++) {
      const { ms, status } = await runOnce(harness, {
        ...options.env,
        BENCH_BUNDLE: outfile,
        BENCH_PATH: `/activations/${options.pool}`,
        AWS_ENDPOINT_URL: options.emulatorUrl,
        AWS_ACCESS_KEY_ID: "bench",
        AWS_SECRET_ACCESS_KEY: "bench",
        POWERTOOLS_LOG_LEVEL: "ERROR",
        NODE_OPTIONS: "--enable-source-maps",
      });
      if (i === 0) firstStatus = status;
      samplesMs.push(Math.round(ms * 10) / 10);
    }
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return {
      entry,
      bundleBytes: statSync(outfile).size,
      bundleGzipBytes: gzipSync(readFileSync(outfile)).length,
      samplesMs,
      medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
      maxMs: sorted[sorted.length - 1] ?? 0,
      firstStatus,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runOnce(harness: string, env: Record<string, string>): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    // A clean environment, as Lambda gives one: nothing of this process's but PATH.
    const child = spawn(process.execPath, [harness], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.once("exit", () => {
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as { ms: number; status: number });
      } catch {
        reject(new Error("the cold-start harness printed no answer"));
      }
    });
  });
}
