import { EXIT } from "../context";
import type { Command } from "./command";

export const revoke: Command = {
  name: "revoke",
  synopsis: "revoke POOL | revoke ACTIVATION_ID",
  summary: "for a leaked code: stop handing it out everywhere, delete it and its activation",
  help: `POOL revokes the pool's current activation; ACTIVATION_ID revokes that activation.
Every broker replica and Lambda container stops handing it out on its next request (the pool
row is retired with one conditional write; no cache can bring it back), then the stored code and
the activation are deleted. The next vend rotates to a new activation.
Nodes already registered with it stay registered.`,
  options: {},
  arity: [1, 1],
  async run(ctx, args) {
    const result = await ctx.operations.admin(ctx.vendor()).revoke(args[0]!);
    if (ctx.out.json) {
      ctx.out.data(result);
      return EXIT.ok;
    }
    const id = result.activationId;
    ctx.out.line(`Revoked activation ${id}${result.pool ? ` of pool ${result.pool}` : ""}.`);
    ctx.out.line(
      result.wasCurrent
        ? "- Every replica and Lambda container stops handing it out on its next request; the next vend rotates."
        : "- It was no longer the pool's current activation, so no broker was handing it out.",
    );
    ctx.out.line("- Its stored code and the activation are deleted: it can register nothing more.");
    ctx.out.line(
      `Nodes already registered with it stay registered (SSM counted ${result.registrationsCount}). Find them with:`,
    );
    ctx.out.line(`  activation-broker nodes --activation ${id}`);
    ctx.out.line(`  aws ssm describe-instance-information --filters Key=ActivationIds,Values=${id}`);
    return EXIT.ok;
  },
};
