import { UsageError } from "../cli/args";
import { ConfigError } from "../core/errors";

/**
 * Exit codes of every command this package starts (`npm start`, `activation-broker`):
 * 0 done, 1 failed while running, 2 wrong command line or configuration (the message says which
 * setting, and the fix).
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Runs a command's `main` and turns its outcome into one line on stderr and an exit code.
 * A number from `main` is the exit code; nothing means "keep running" (a server). The line never
 * carries a stack trace or a runtime's error class, only what the person should do.
 */
export function runMain(program: string, usage: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      if (code !== undefined) process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(`${program}: ${messageOf(error)}\n`);
      if (error instanceof UsageError) process.stderr.write(`\n${usage}\n`);
      process.exit(error instanceof UsageError || error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURE);
    },
  );
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // One line: multi-line messages (some SDK errors) would break "one line per error".
  return error.message.split("\n")[0]!.trim() || error.name;
}
