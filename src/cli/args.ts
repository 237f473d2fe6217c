import { parseArgs, type ParseArgsConfig } from "node:util";

/** The command line is wrong: the entry point prints the message and the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `parseArgs` in strict mode, with its errors said in our words: Node's messages carry a class
 * name (ERR_PARSE_ARGS_UNKNOWN_OPTION) and advice about `--` that fits no command of ours.
 */
export function parseCommandLine<O extends Options>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    const option = /'(?:-\w, )?(--?[\w-]+)/.exec(message)?.[1] ?? "";
    switch (code) {
      case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
        throw new UsageError(`unknown option '${option}'`);
      case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
        throw new UsageError(
          message.includes("argument missing")
            ? `option '${option}' needs a value`
            : `option '${option}' takes no value`,
        );
      case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
        throw new UsageError(`unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ""}`.trim());
      default:
        throw error;
    }
  }
}
