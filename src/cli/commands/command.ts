import type { Context } from "../context";

export type OptionSpec = Readonly<
  Record<string, { readonly type: "string" | "boolean"; readonly short?: string }>
>;

/** One admin command: its own options and help, run against the shared context. */
export interface Command {
  readonly name: string;
  readonly synopsis: string;
  readonly summary: string;
  /** Command-specific help, printed under the synopsis by `--help`. */
  readonly help: string;
  readonly options: OptionSpec;
  /** Positional arguments: [min, max]. */
  readonly arity: readonly [number, number];
  run(
    ctx: Context,
    args: readonly string[],
    values: Readonly<Record<string, string | boolean | undefined>>,
  ): Promise<number>;
}
