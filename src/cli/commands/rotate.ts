import { EXIT } from "../context";
import { iso } from "../output";
import type { Command } from "./command";

export const rotate: Command = {
  name: "rotate",
  synopsis: "rotate POOL",
  summary: "switch POOL to a fresh activation now",
  help: `Retires the current activation (pairs already handed out stay valid until it expires) and
rotates exactly as a vend would; the rotation takes slot 1 of the new activation for itself.`,
  options: {},
  arity: [1, 1],
  async run(ctx, args) {
    const result = await ctx.operations.admin(ctx.vendor()).rotate(args[0]!);
    if (ctx.out.json) {
      ctx.out.data({ ...result, expiresAt: iso(result.expiresAt) });
      return EXIT.ok;
    }
    ctx.out.line(
      `Pool ${result.pool} now hands out activation ${result.activationId} (expires ${iso(result.expiresAt)}).`,
    );
    if (result.previousActivationId) {
      ctx.out.line(
        `Previous activation ${result.previousActivationId} is retired; pairs already handed out stay valid until it expires.`,
      );
    }
    return EXIT.ok;
  },
};
