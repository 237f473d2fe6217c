/**
 * `npm start [-- --config pools.json]`: the emulated AWS and the broker on this machine.
 * Ports: PORT (broker, default 8080) and EMULATOR_PORT (emulated AWS, default 4566). BROKER_*
 * and AWS_REGION are read and validated as by the Lambda and `serve`; the emulated AWS fills in
 * the table, the roles and the Region when they are not set.
 */
import { parseCommandLine } from "../cli/args";
import { readPort } from "../settings";
import { startLocalStack } from "./local-stack";
import { EXIT_FAILURE, EXIT_OK, runMain } from "./run";
import { exitOnUncaughtErrors } from "../http/node-server";
import { createLogger } from "../logging";

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
  const { logger } = createLogger();
  exitOnUncaughtErrors(logger);
  const stack = await startLocalStack({
    logger,
    brokerPort: readPort("PORT", 8080),
    emulatorPort: readPort("EMULATOR_PORT", 4566),
    env: process.env,
    ...(values.config !== undefined && { configFile: values.config }),
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
      "",
      "  Ctrl-C stops both.",
      "",
    ].join("\n"),
  );
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    stack.close().then(
      () => process.exit(EXIT_OK),
      () => process.exit(EXIT_FAILURE),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

runMain("npm start", USAGE, main);
