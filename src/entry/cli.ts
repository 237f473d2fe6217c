/**
 * The `activation-broker` command's entry point (`npm run build` bundles this file; a checkout
 * without the bundle runs it through tsx, see bin/activation-broker.js): wires what the command
 * line asks for — the standalone server, or the admin commands' deployment — and turns the
 * outcome into an exit code (src/entry/run.ts).
 */
import { createAwsClients } from "../aws/clients";
import { createLookupClients } from "../aws/lookup-clients";
import { checkPoolTable } from "../aws/dynamodb-table";
import type { AdminWiring } from "../cli/context";
import { main, USAGE } from "../cli/main";
import { createOperations, createVendor } from "../composition";
import type { Vendor } from "../core/vend";
import { createLogger } from "../logging";
import { createMetrics } from "../metrics";
import { loadSettings, readRuntimeEnvironment } from "../settings";
import { runMain } from "./run";
import { serveUntilSignal, startBrokerServer, type Listen } from "./server";

/** `activation-broker serve`: the broker on real AWS, configured by the BROKER_* environment. */
async function serve(listen: Listen): Promise<number> {
  const settings = loadSettings();
  const { logger } = createLogger(readRuntimeEnvironment());
  const clients = createAwsClients({ region: settings.region });
  await checkPoolTable(clients.dynamodb, settings.tableName, settings.region);
  // Embedded metric format on stdout (the CloudWatch agent publishes it): Vends, SlotTheftDetected…
  const { metrics } = createMetrics();
  const { broker, server } = await startBrokerServer({ settings, clients, logger, metrics, listen });
  logger.info("broker listening", {
    address: server.address.address,
    port: server.address.port,
    pools: broker.vendor.poolNames(),
  });
  await serveUntilSignal(logger, () => server.close("drain"));
  return 0;
}

/** The admin commands' deployment: the janitor's inventories and, on first use, the request path. */
const connect: AdminWiring["connect"] = (settings, aws) => {
  const clients = createAwsClients({
    region: settings.region,
    ...(aws.endpoint !== undefined && { endpoint: aws.endpoint }),
    ...(aws.credentials !== undefined && { credentials: aws.credentials }),
    ...(aws.profile !== undefined && { profile: aws.profile }),
  });
  const operations = createOperations({ settings, clients, logger: aws.logger, onPage: aws.onPage });
  let vendor: Vendor | undefined;
  return {
    operations,
    vendor: () => (vendor ??= createVendor({ settings, clients, logger: aws.logger })),
    close() {
      clients.dynamodb.destroy();
      clients.ssm.destroy();
    },
  };
};

runMain("activation-broker", USAGE, () =>
  main(process.argv.slice(2), { serve, connect, lookup: createLookupClients }),
);
