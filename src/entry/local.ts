/**
 * `npm start [-- --config pools.json]`: the emulated AWS and the broker on this machine.
 * Ports: PORT (broker, default 8080) and EMULATOR_PORT (emulated AWS, default 4566). BROKER_*
 * and AWS_REGION are read and validated as by the Lambda and `serve`; the emulated AWS fills in
 * the table, the roles and the Region when they are not set.
 */
import { resolve } from "node:path";
import { parseCommandLine } from "../cli/args";
import { LOCAL_EMULATOR_PORT, removeNpmStartRecord, writeNpmStartRecord } from "../cli/local-deployment";
import { processEnvironment, readPort, readRuntimeEnvironment } from "../settings";
import { startLocalStack } from "./local-stack";
import { EXIT_OK, runMain } from "./run";
import { createLogger } from "../logging";
import { serveUntilSignal } from "./server";

const USAGE = `Usage: npm start [-- --config <pools.json>]

Runs the emulated AWS (DynamoDB + SSM) and the broker on this machine.
  --config   a {"pools": {...}} file (default: one pool, "default")
Environment: PORT (broker, default 8080), EMULATOR_PORT (emulated AWS, default 4566), and the
broker's BROKER_* and AWS_REGION settings (docs/configuration.md).
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`;

async function main(): Promise<number | void> {
  const { values } = parseCommandLine(process.argv.slice(2), {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const { logger } = createLogger(readRuntimeEnvironment());
  const stack = await startLocalStack({
    logger,
    brokerPort: readPort("PORT", 8080),
    emulatorPort: readPort("EMULATOR_PORT", LOCAL_EMULATOR_PORT),
    env: processEnvironment(),
    // Absolute: `activation-broker --local` reads the same file from wherever it runs.
    ...(values.config !== undefined && { configFile: resolve(values.config) }),
  });
  writeNpmStartRecord({
    pid: process.pid,
    brokerUrl: stack.brokerUrl,
    emulatorUrl: stack.emulatorUrl,
    env: stack.env,
  });
  const pools = stack.broker.vendor.poolNames().join(", ");
  process.stderr.write(
    [
      "",
      `  Broker        ${stack.brokerUrl}   (pools: ${pools})`,
      `  Emulated AWS  ${stack.emulatorUrl}   (local test equipment: DynamoDB + SSM)`,
      "",
      "  Try it:",
      `    curl -s ${stack.brokerUrl}/ | jq -r '.ActivationCode'`,
      `    curl -s ${stack.brokerUrl}/activations/default`,
      `    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws ssm describe-activations --endpoint-url ${stack.emulatorUrl} --region ${stack.settings.region}`,
      `    npx activation-broker --local status`,
      "",
      "  Ctrl-C stops both.",
      "",
    ].join("\n"),
  );
  try {
    await serveUntilSignal(logger, () => stack.close());
  } finally {
    removeNpmStartRecord(process.pid);
  }
  return EXIT_OK;
}

runMain("npm start", USAGE, main);
