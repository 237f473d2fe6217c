/**
 * activation-broker — the broker as a Node service (standalone mode) on real AWS.
 *
 *   activation-broker serve [--port 8080] [--host 0.0.0.0]
 *
 * Configuration comes from the environment exactly as for the Lambda (BROKER_*, AWS_REGION,
 * the default credential chain); state stays in DynamoDB, so any number of replicas may run.
 */
import { parseArgs } from "node:util";
import { createAwsClients } from "../aws/clients";
import { createBroker } from "../composition";
import { createNodeServer, listen } from "../http/node-server";
import { createLogger } from "../logging";
import { loadSettings, readPort } from "../settings";

const USAGE = `Usage: activation-broker serve [--port <port>] [--host <address>]

Runs the broker as an HTTP service against real AWS (standalone mode).
  --port   port to listen on (default: $PORT or 8080)
  --host   address to bind (default 127.0.0.1; use 0.0.0.0 behind a TLS-terminating proxy)
Configuration: BROKER_* environment variables and AWS_REGION (see docs/configuration.md).
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (positionals[0] !== "serve" || positionals.length > 1) {
    console.error(`activation-broker: unknown command '${positionals.join(" ")}'\n\n${USAGE}`);
    return 2;
  }
  const port = readPort("PORT", 8080, process.env, { name: "--port", value: values.port });
  const settings = loadSettings();
  const { logger } = createLogger();
  const broker = createBroker({ settings, clients: createAwsClients({ region: settings.region }), logger });
  const server = createNodeServer(broker.handler, {
    logger,
    ...(settings.publicUrl !== undefined && { publicUrl: settings.publicUrl }),
  });
  const address = await listen(server, port, values.host ?? "127.0.0.1");
  logger.info("broker listening", {
    address: address.address,
    port: address.port,
    pools: broker.vendor.poolNames(),
  });
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}
