/**
 * `npm start [-- --config pools.json]`: the emulated AWS and the broker on this machine.
 * Ports: PORT (broker, default 8080) and EMULATOR_PORT (emulated AWS, default 4566).
 */
import { parseArgs } from "node:util";
import { BrokerError } from "../core/errors";
import { readPort } from "../settings";
import { startLocalStack } from "./local-stack";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log(
      "Usage: npm start [-- --config <pools.json>]\nEnv: PORT (default 8080), EMULATOR_PORT (default 4566)",
    );
    return;
  }
  const stack = await startLocalStack({
    brokerPort: readPort("PORT", 8080),
    emulatorPort: readPort("EMULATOR_PORT", 4566),
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
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  const message = error instanceof BrokerError ? error.message : String(error);
  process.stderr.write(`activation-broker: ${message}\n`);
  process.exit(1);
});
