import { EXIT } from "../context";
import type { Command } from "./command";

export const cleanup: Command = {
  name: "cleanup",
  synopsis: "cleanup [--apply]",
  summary: "the janitor's pass on demand (a dry run unless --apply)",
  help: `Deletes orphaned, revoked, expired and fully registered spent activations, the codes of
superseded ones after the grace period, and codes whose activation is gone; retires activations
with more registrations than pairs handed out. Never touches other deployments' resources.
  --apply   make the changes (default: only report them)`,
  options: { apply: { type: "boolean" } },
  arity: [0, 0],
  async run(ctx, _args, values) {
    const apply = values.apply === true;
    const report = await ctx.operations.janitor.cleanup({ apply });
    if (ctx.out.json) {
      ctx.out.data({
        applied: report.applied,
        deletedActivations: report.deletedActivations.map((a) => ({
          activationId: a.activation.activationId,
          pool: a.pool,
          state: a.state,
          reason: a.reason,
        })),
        deletedParameters: report.deletedParameters.map((p) => ({
          name: p.parameter.name,
          state: p.state,
          reason: p.reason,
        })),
        slotThefts: report.slotThefts,
        failures: report.failures,
      });
      return report.failures.length > 0 ? EXIT.partial : EXIT.ok;
    }
    const verb = apply ? "deleted" : "delete";
    const rows = [
      ...report.deletedActivations.map((a) => [
        verb,
        "activation",
        a.activation.activationId,
        a.state,
        a.reason,
      ]),
      ...report.deletedParameters.map((p) => [verb, "parameter", p.parameter.name, p.state, p.reason]),
      ...report.slotThefts.map((t) => [
        apply ? "retired" : "retire",
        "activation",
        t.activationId,
        "current",
        `slot theft: ${t.registrationsCount} registrations, ${t.issued} pairs handed out`,
      ]),
    ];
    if (rows.length === 0) ctx.out.line("Nothing to clean up.");
    else ctx.out.table(["ACTION", "KIND", "ID", "STATE", "REASON"], rows);
    for (const failure of report.failures) ctx.out.line(`FAILED ${failure.resource}: ${failure.error}`);
    if (!apply && rows.length > 0) ctx.out.line("\nDry run: nothing was changed. Run with --apply to do it.");
    return report.failures.length > 0 ? EXIT.partial : EXIT.ok;
  },
};
