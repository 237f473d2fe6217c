/**
 * activation-broker — the broker as a Node service (standalone mode) on real AWS.
 *
 *   activation-broker serve [--port 8080] [--host 0.0.0.0]
 *
 * Configuration comes from the environment exactly as for the Lambda (BROKER_*, AWS_REGION,
 * the default credential chain); state stays in DynamoDB, so any number of replicas may run.
 */
import { createAwsClients } from "../aws/clients";
import { checkPoolTable } from "../aws/dynamodb-table";
import { createBroker } from "../composition";
import { createNodeServer, listen } from "../http/node-server";
import { createLogger } from "../logging";
import { loadSettings, readPort } from "../settings";
import { parseCommandLine, UsageError } from "./args";
import { version } from "../../package.json";

export const USAGE = `Usage: activation-broker serve [--port <port>] [--host <address>]
       activation-broker --help | --version

Runs the broker as an HTTP service against real AWS (standalone mode).
  --port   port to listen on (default: $PORT or 8080)
  --host   address to bind (default 127.0.0.1; use 0.0.0.0 behind a TLS-terminating proxy)
Configuration: BROKER_* environment variables and AWS_REGION (see docs/configuration.md).
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`;

/** Runs the command line; resolves with the exit code. Usage and configuration errors throw. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      port: { type: "string" },
      host: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("no command given");
  if (positionals[0] !== "serve") throw new UsageError(`unknown command '${positionals[0]}'`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const port = readPort("PORT", 8080, process.env, { name: "--port", value: values.port });
  const settings = loadSettings();
  const { logger } = createLogger();
  const clients = createAwsClients({ region: settings.region });
  await checkPoolTable(clients.dynamodb, settings.tableName, settings.region);
  const broker = createBroker({ settings, clients, logger });
  const server = createNodeServer(broker.handler, {
    logger,
    ...(settings.publicUrl !== undefined && { publicUrl: settings.publicUrl }),
  });
  const address = await listen(
    server,
    port,
    values.host ?? "127.0.0.1",
    values.port !== undefined ? "--port" : "PORT",
  );
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
