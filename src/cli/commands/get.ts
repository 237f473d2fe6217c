import { EXIT } from "../context";
import { iso } from "../output";
import type { Command } from "./command";

const HIDDEN = "(hidden; pass --show-code)";

export const get: Command = {
  name: "get",
  synopsis: "get --show-code POOL",
  summary: "a pair from POOL exactly as a server gets one (the only command that prints a code)",
  help: `Vends a pair from POOL, taking one registration slot, as GET /activations/POOL does.
The code is printed only with --show-code; treat the output as a secret.
  --show-code   print the Activation Code`,
  options: { "show-code": { type: "boolean" } },
  arity: [1, 1],
  async run(ctx, args, values) {
    const pair = await ctx.operations.admin(ctx.vendor()).get(args[0]!);
    const body = {
      ActivationId: pair.activationId,
      ActivationCode: values["show-code"] === true ? pair.activationCode : HIDDEN,
      Region: ctx.settings.region,
      ExpirationDate: iso(pair.expiresAt),
      Pool: pair.pool,
    };
    if (ctx.out.json) ctx.out.data(body);
    else ctx.out.table(["FIELD", "VALUE"], Object.entries(body));
    return EXIT.ok;
  },
};
