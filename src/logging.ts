import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import type { LogAttributes } from "@aws-lambda-powertools/logger/types";
import type { Logger } from "./core/ports";

/**
 * The structured logger of every entry point: Powertools' JSON lines (level from
 * POWERTOOLS_LOG_LEVEL), seen through the core's small Logger port.
 */
export function createLogger(): { logger: Logger; powertools: PowertoolsLogger } {
  const powertools = new PowertoolsLogger({ serviceName: "activation-broker" });
  const logger: Logger = {
    debug: (message, extra) => powertools.debug(message, (extra ?? {}) as LogAttributes),
    info: (message, extra) => powertools.info(message, (extra ?? {}) as LogAttributes),
    warn: (message, extra) => powertools.warn(message, (extra ?? {}) as LogAttributes),
    error: (message, extra) => powertools.error(message, (extra ?? {}) as LogAttributes),
  };
  return { logger, powertools };
}
