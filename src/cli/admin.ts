/**
 * The admin commands of the `activation-broker` bin (serve lives in main.ts). Each parses its own
 * options plus the global ones, prints a table (or --json) on stdout, and maps any failure to one
 * line on stderr and a documented exit code.
 */
import { parseCommandLine } from "./args";
import type { Command } from "./commands/command";
import { cleanup } from "./commands/cleanup";
import { get } from "./commands/get";
import { list } from "./commands/list";
import { nodes } from "./commands/nodes";
import { revoke } from "./commands/revoke";
import { rotate } from "./commands/rotate";
import { status } from "./commands/status";
import {
  createContext,
  describeFailure,
  EXIT,
  GLOBAL_HELP,
  GLOBAL_OPTIONS,
  UsageError,
  type AdminWiring,
  type Context,
} from "./context";
import { readRuntimeEnvironment } from "../settings";

export const ADMIN_COMMANDS: readonly Command[] = [status, list, rotate, revoke, cleanup, nodes, get];

export function commandHelp(command: Command): string {
  return `Usage: activation-broker ${command.synopsis} [global options]\n\n${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.\n${command.help}\n\n${GLOBAL_HELP}`;
}

export async function runAdmin(command: Command, argv: string[], wiring: AdminWiring): Promise<number> {
  let ctx: Context | undefined;
  let endpoint: string | undefined;
  try {
    const { values, positionals } = parseCommandLine(argv, { ...GLOBAL_OPTIONS, ...command.options }, true);
    if (values.help) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return EXIT.ok;
    }
    const [min, max] = command.arity;
    if (positionals.length < min || positionals.length > max) {
      throw new UsageError(`usage: activation-broker ${command.synopsis} (see --help)`);
    }
    endpoint = (values["endpoint-url"] as string | undefined) ?? readRuntimeEnvironment().awsEndpointUrl;
    ctx = await createContext(values, wiring);
    return await command.run(ctx, positionals, values as Record<string, string | boolean | undefined>);
  } catch (error) {
    const { line, exit } = describeFailure(error, endpoint);
    process.stderr.write(`activation-broker ${command.name}: ${line}\n`);
    return exit;
  } finally {
    ctx?.close();
  }
}
