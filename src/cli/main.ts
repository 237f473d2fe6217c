/**
 * activation-broker — the broker as a Node service (standalone mode) on real AWS, and the
 * operator's commands (src/cli/admin.ts).
 *
 *   activation-broker serve [--port 8080] [--host 0.0.0.0]
 *   activation-broker status | list | rotate | revoke | cleanup | nodes | get …
 *
 * Configuration comes from the environment exactly as for the Lambda (BROKER_*, AWS_REGION,
 * the default credential chain); state stays in DynamoDB, so any number of replicas may run.
 */
import { createAwsClients } from "../aws/clients";
import { checkPoolTable } from "../aws/dynamodb-table";
import { createBroker, startReconcileTimer } from "../composition";
import { createNodeServer, exitOnUncaughtErrors, listen } from "../http/node-server";
import { createLogger } from "../logging";
import { createMetrics } from "../metrics";
import { loadSettings, readPort } from "../settings";
import packageJson from "../../package.json";
import { ADMIN_COMMANDS, runAdmin } from "./admin";
import { parseCommandLine, UsageError } from "./args";

const VERSION = packageJson.version;

export const USAGE = `Usage: activation-broker <command> [options]     (activation-broker <command> --help)

Commands:
  serve [--port <port>] [--host <address>]
      run the broker as an HTTP service against real AWS (standalone mode);
      --port: default $PORT or 8080; --host: default 127.0.0.1
${ADMIN_COMMANDS.map((c) => `  ${c.synopsis}\n      ${c.summary}`).join("\n")}

Configuration: the deployment's BROKER_* environment variables (docs/configuration.md), the AWS
default credential chain and Region; --endpoint-url or AWS_ENDPOINT_URL for the local emulated AWS.
Exit codes: 0 success, 1 unexpected failure, 2 usage or configuration error, 3 pool or activation
not found, 4 AWS refused (credentials, permissions), 5 AWS unreachable or throttling (retry later),
6 some --apply actions failed.
  --version   print the version`;

/** Runs the command line; resolves with the exit code. Usage and configuration errors throw. */
export async function main(argv: string[]): Promise<number> {
  const admin = ADMIN_COMMANDS.find((c) => c.name === argv[0]);
  if (admin) return runAdmin(admin, argv.slice(1));
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
    process.stdout.write(`activation-broker ${VERSION}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("no command given");
  if (positionals[0] !== "serve") throw new UsageError(`unknown command '${positionals[0]}'`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const port = readPort("PORT", 8080, process.env, { name: "--port", value: values.port });
  const settings = loadSettings();
  const { logger } = createLogger();
  exitOnUncaughtErrors(logger);
  const clients = createAwsClients({ region: settings.region });
  await checkPoolTable(clients.dynamodb, settings.tableName, settings.region);
  // Embedded metric format on stdout (the CloudWatch agent publishes it): Vends, SlotTheftDetected…
  const { metrics } = createMetrics();
  const broker = createBroker({ settings, clients, logger, metrics });
  const server = createNodeServer(broker.handler, {
    logger,
    limits: settings.server,
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
  const stopReconciling = startReconcileTimer(broker, settings.reconcileIntervalMs, logger);
  await new Promise<void>((resolve) => {
    const stop = () => {
      stopReconciling();
      server.close(() => resolve());
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}
