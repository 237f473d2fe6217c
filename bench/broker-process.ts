/**
 * The broker under test, in its own process (forked by bench/fleet-burst.ts with an IPC channel):
 * wired by the builder of `serve` and `npm start` (src/entry/server.ts: the same broker, Node
 * server and slot-theft timer) on the emulated AWS of another process, with a clock the benchmark
 * can move to jump across an expiry mid-burst.
 *
 * IPC in:  {type: "clock", offsetMs}      IPC out: {type: "ready", url} | {type: "clock-set"}
 */
import { createAwsClients } from "../src/aws/clients";
import { ensurePoolTable } from "../src/aws/dynamodb-table";
import type { Clock } from "../src/core/ports";
import { startBrokerServer } from "../src/entry/server";
import { createLogger } from "../src/logging";
import { loadSettings, readRuntimeEnvironment } from "../src/settings";

const emulatorUrl = process.env.BENCH_EMULATOR_URL;
if (!emulatorUrl || !process.send) {
  console.error(
    "bench/broker-process.ts is started by bench/fleet-burst.ts (needs BENCH_EMULATOR_URL and IPC)",
  );
  process.exit(2);
}

let offsetMs = 0;
const clock: Clock = { now: () => Date.now() + offsetMs };

const settings = loadSettings(process.env);
const clients = createAwsClients({
  region: settings.region,
  endpoint: emulatorUrl,
  credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  // The emulated AWS shares two cores with the broker and the load generator; a loaded
  // emulator is slower than real DynamoDB, so the local stack's longer timeouts apply here too.
  timeouts: { connectionMs: 10_000, requestMs: 20_000 },
});
await ensurePoolTable(clients.dynamodb, settings.tableName);
const { logger } = createLogger(readRuntimeEnvironment());
const { server } = await startBrokerServer({
  settings,
  clients,
  logger,
  clock,
  listen: { port: 0, host: "127.0.0.1", portSetting: "port" },
});

process.on("message", (message: { type?: string; offsetMs?: number }) => {
  if (message.type === "clock" && typeof message.offsetMs === "number") {
    offsetMs = message.offsetMs;
    process.send?.({ type: "clock-set" });
  }
});
process.on("disconnect", () => process.exit(0));
process.send({ type: "ready", url: server.url });
