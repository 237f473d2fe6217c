/**
 * `npm run emulator`: the local emulated AWS (SSM + DynamoDB) for development and tests.
 * Never a production service — see emulator/README.md.
 */
import { startEmulator } from "./server";

const port = process.env.EMULATOR_PORT === undefined ? 4566 : Number(process.env.EMULATOR_PORT);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`EMULATOR_PORT must be a port number, got "${process.env.EMULATOR_PORT}"`);
  process.exit(2);
}

const emulator = await startEmulator({
  port,
  host: process.env.EMULATOR_HOST ?? "127.0.0.1",
  logRequests: process.env.EMULATOR_LOG_REQUESTS === "1",
});

console.log(`Local emulated AWS (SSM + DynamoDB) listening on ${emulator.url} (region ${emulator.region})
Development and test equipment only - never point production at it.

Use it with the AWS CLI (any credentials are accepted):
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=${emulator.region}
  aws ssm describe-activations --endpoint-url ${emulator.url} --region ${emulator.region}
  aws dynamodb list-tables --endpoint-url ${emulator.url} --region ${emulator.region}

Test controls: curl ${emulator.url}/_emulator/health  (counters, faults, clock, reset: emulator/README.md)
Ctrl-C stops it.`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal} received, stopping the emulator`);
  await emulator.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
