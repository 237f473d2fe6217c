import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import type { LogAttributes } from "@aws-lambda-powertools/logger/types";
import type { Logger } from "./core/ports";
import type { RuntimeEnvironment } from "./settings";

const LEVELS = ["debug", "info", "warn", "error"] as const;
type Level = (typeof LEVELS)[number];

/**
 * The structured logger of every entry point, seen through the core's small Logger port:
 * Powertools' JSON lines (level from POWERTOOLS_LOG_LEVEL) in Lambda and whenever the output is
 * not a terminal, so log pipelines get JSON; one readable line per entry on a terminal.
 */
export function createLogger(
  runtime: RuntimeEnvironment,
  options: { pretty?: boolean } = {},
): {
  logger: Logger;
  powertools: PowertoolsLogger;
} {
  const powertools = new PowertoolsLogger({ serviceName: "activation-broker" });
  const pretty =
    options.pretty ?? (process.stdout.isTTY === true && runtime.lambdaFunctionName === undefined);
  if (pretty) return { logger: readableLogger(runtime.logLevel), powertools };
  const logger: Logger = {
    debug: (message, extra) => powertools.debug(message, (extra ?? {}) as LogAttributes),
    info: (message, extra) => powertools.info(message, (extra ?? {}) as LogAttributes),
    warn: (message, extra) => powertools.warn(message, (extra ?? {}) as LogAttributes),
    error: (message, extra) => powertools.error(message, (extra ?? {}) as LogAttributes),
  };
  return { logger, powertools };
}

/** `12:00:00 WARN  request method=GET path=/ status=503 outcome=RotationInProgress ms=5003` */
export function readableLogger(
  level = "INFO",
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const threshold = Math.max(0, LEVELS.indexOf(level.toLowerCase() as Level));
  const emit = (at: Level) => (message: string, extra?: Record<string, unknown>) => {
    if (LEVELS.indexOf(at) < threshold) return;
    const fields = Object.entries(extra ?? {})
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
    const time = new Date().toISOString().slice(11, 19);
    write(`${time} ${at.toUpperCase().padEnd(5)} ${message}${fields ? ` ${fields}` : ""}\n`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
