/**
 * The `activation-broker` command's entry point (`npm run build` bundles this file): runs the
 * command line and turns its outcome into an exit code.
 */
import { main } from "../cli/main";
import { BrokerError } from "../core/errors";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const usage =
      error instanceof Error && String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    console.error(`activation-broker: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof BrokerError || usage ? 2 : 1);
  },
);
