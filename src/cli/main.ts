/**
 * activation-broker — the broker as a Node service (standalone mode) on real AWS, and the
 * operator's commands (src/cli/admin.ts).
 *
 *   activation-broker serve [--port 8080] [--host 0.0.0.0]
 *   activation-broker status | list | rotate | revoke | cleanup | nodes | get …
 *
 * Configuration comes from the environment exactly as for the Lambda (BROKER_*, AWS_REGION,
 * the default credential chain); state stays in DynamoDB, so any number of replicas may run.
 * The command line is parsed here; what it runs is wired by its entry point (src/entry/cli.ts).
 */
import { processEnvironment, readPort } from "../settings";
import packageJson from "../../package.json";
import { ADMIN_COMMANDS, runAdmin } from "./admin";
import { parseCommandLine, UsageError } from "./args";
import type { Command } from "./commands/command";
import { GLOBAL_OPTIONS, type AdminWiring } from "./context";

const VERSION = packageJson.version;

export const USAGE = `Usage: activation-broker <command> [options]     (activation-broker <command> --help)

Commands:
  serve [--port <port>] [--host <address>]
      run the broker as an HTTP service against real AWS (standalone mode);
      --port: default $PORT or 8080; --host: default 127.0.0.1
${ADMIN_COMMANDS.map((c) => `  ${c.synopsis}\n      ${c.summary}`).join("\n")}

Which deployment: --stack NAME (its CloudFormation stack), --local (the running \`npm start\`), or
the BROKER_* environment variables (docs/configuration.md; serve reads only these); the AWS default
credential chain and Region.
Exit codes: 0 success, 1 unexpected failure, 2 usage or configuration error, 3 pool, activation
or deployment not found, 4 AWS refused (credentials, permissions), 5 AWS unreachable or throttling (retry later),
6 some --apply actions failed.
  --version   print the version`;

export const SERVE_USAGE = `Usage: activation-broker serve [--port <port>] [--host <address>]

Runs the broker as an HTTP service against real AWS (standalone mode). Its settings are the
BROKER_* environment variables (docs/configuration.md); AWS credentials and Region come from the
default chain. State stays in DynamoDB, so any number of replicas may run behind a load balancer.
  --port PORT      listen on this port (default: $PORT, else 8080; 0 picks a free one)
  --host ADDRESS   listen on this address (default 127.0.0.1; 0.0.0.0 for every interface)
Stops on SIGINT or SIGTERM once the requests in flight have been answered.
Exit codes: 0 stopped, 1 failed while running, 2 usage or configuration error.`;

export interface CliWiring extends AdminWiring {
  /** `serve`: runs the standalone server until SIGINT/SIGTERM; resolves with the exit code. */
  serve(listen: {
    readonly port: number;
    readonly host: string;
    readonly portSetting: string;
  }): Promise<number>;
}

/**
 * Where the admin command is: first, or after global options, as the AWS CLI allows
 * (`activation-broker --local status`). A global option's value is never taken for a command.
 */
function adminCommandAt(argv: readonly string[]): { command: Command; index: number } | undefined {
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!;
    const command = ADMIN_COMMANDS.find((c) => c.name === token);
    if (command) return { command, index };
    const option = GLOBAL_OPTIONS[token.replace(/^--/, "") as keyof typeof GLOBAL_OPTIONS];
    if (!token.startsWith("--") || option === undefined) return undefined;
    if (option.type === "string") index++;
  }
  return undefined;
}

/** Runs the command line; resolves with the exit code. Usage and configuration errors throw. */
export async function main(argv: string[], wiring: CliWiring): Promise<number> {
  const at = adminCommandAt(argv);
  if (at !== undefined) {
    return runAdmin(at.command, [...argv.slice(0, at.index), ...argv.slice(at.index + 1)], wiring);
  }
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
  if (positionals[0] === "serve" && values.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
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
  const port = readPort("PORT", 8080, processEnvironment(), { name: "--port", value: values.port });
  return wiring.serve({
    port,
    host: values.host ?? "127.0.0.1",
    portSetting: values.port !== undefined ? "--port" : "PORT",
  });
}
