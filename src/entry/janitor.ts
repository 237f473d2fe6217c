/**
 * The scheduled janitor's entry point (the CDK app bundles this file and runs it hourly from an
 * EventBridge rule): the same cleanup and fleet hygiene as `activation-broker cleanup --apply`,
 * with each pool's hygiene settings. Any failed action fails the invocation, so the function's
 * Errors metric (and its alarm) says the janitor needs a look.
 */
import type { Context } from "aws-lambda";
import { createAwsClients } from "../aws/clients";
import { createOperations } from "../composition";
import { createLogger } from "../logging";
import { createMetrics } from "../metrics";
import { loadSettings, readRuntimeEnvironment } from "../settings";

const { logger, powertools } = createLogger(readRuntimeEnvironment());

export interface JanitorSummary {
  readonly deletedActivations: number;
  readonly deletedParameters: number;
  readonly slotThefts: number;
  readonly taggedNodes: number;
  readonly deregisteredNodes: number;
  readonly hybridNodes: number;
}

export async function handler(_event: unknown, context?: Context): Promise<JanitorSummary> {
  if (context) powertools.addContext(context);
  const settings = loadSettings();
  const clients = createAwsClients({ region: settings.region });
  const { metrics, flush } = createMetrics();
  try {
    const { janitor } = createOperations({ settings, clients, logger, metrics });
    const cleanup = await janitor.cleanup({ apply: true });
    const hygiene = await janitor.hygiene({ apply: true });
    const summary: JanitorSummary = {
      deletedActivations: cleanup.deletedActivations.length,
      deletedParameters: cleanup.deletedParameters.length,
      slotThefts: cleanup.slotThefts.length,
      taggedNodes: hygiene.tagged.length,
      deregisteredNodes: hygiene.deregistered.length,
      hybridNodes: hygiene.hybridNodes,
    };
    logger.info("janitor run finished", { ...summary });
    const failures = [...cleanup.failures, ...hygiene.failures];
    if (failures.length > 0) {
      throw new Error(`janitor: ${failures.length} action(s) failed; see the log lines before this one`);
    }
    return summary;
  } finally {
    flush();
    clients.dynamodb.destroy();
    clients.ssm.destroy();
  }
}
