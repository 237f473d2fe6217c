import { EXIT, UsageError } from "../context";
import { iso } from "../output";
import type { Command } from "./command";

export const nodes: Command = {
  name: "nodes",
  synopsis: "nodes [--stale DAYS] [--duplicates] [--activation ID] [--apply]",
  summary: "managed nodes this deployment registered, with hygiene actions",
  help: `Lists this deployment's managed nodes (the ones carrying its tag) with their host name and
connection state, and what hygiene would do. Name tags (Name = the node's ComputerName) follow
each pool's "hygiene.nameTag" setting.
  --stale DAYS      select nodes ConnectionLost for more than DAYS days
  --duplicates      select older registrations of a re-imaged host (same ComputerName, a newer
                    node exists), ConnectionLost for more than --stale DAYS (default 1)
  --activation ID   only nodes registered with this activation
  --apply           deregister the selected nodes and add the Name tags (default: only report)`,
  options: {
    stale: { type: "string" },
    duplicates: { type: "boolean" },
    activation: { type: "string" },
    apply: { type: "boolean" },
  },
  arity: [0, 0],
  async run(ctx, _args, values) {
    let staleDays: number | undefined;
    if (values.stale !== undefined) {
      staleDays = Number(values.stale);
      if (!Number.isInteger(staleDays) || staleDays < 0) {
        throw new UsageError(`--stale must be a whole number of days, got '${String(values.stale)}'`);
      }
    }
    const selecting = staleDays !== undefined || values.duplicates === true;
    const report = await ctx.operations.janitor.hygiene({
      apply: values.apply === true,
      ...(selecting && {
        selection: {
          ...(staleDays !== undefined && { staleDays }),
          duplicates: values.duplicates === true,
        },
      }),
    });
    const shown = report.nodes.filter(
      (n) =>
        (values.activation === undefined || n.node.activationId === values.activation) &&
        (!selecting || n.actions.includes("deregister")),
    );
    if (ctx.out.json) {
      ctx.out.data({
        applied: report.applied,
        hybridNodes: report.hybridNodes,
        nodes: shown.map((n) => ({
          ...n.node,
          lastPingAt: iso(n.node.lastPingAt),
          registeredAt: iso(n.node.registeredAt),
          duplicateOf: n.duplicateOf,
          actions: n.actions,
        })),
        tagged: report.tagged,
        deregistered: report.deregistered,
        failures: report.failures,
      });
      return report.failures.length > 0 ? EXIT.partial : EXIT.ok;
    }
    const done = (id: string) => report.deregistered.includes(id) || report.tagged.includes(id);
    ctx.out.table(
      ["INSTANCE", "POOL", "COMPUTER NAME", "PING", "LAST PING", "DUPLICATE OF", "ACTION"],
      shown.map((n) => [
        n.node.instanceId,
        n.node.pool,
        n.node.computerName,
        n.node.pingStatus,
        iso(n.node.lastPingAt),
        n.duplicateOf,
        n.actions.length === 0 ? "" : `${n.actions.join(",")}${done(n.node.instanceId) ? " (done)" : ""}`,
      ]),
    );
    for (const failure of report.failures) ctx.out.line(`FAILED ${failure.resource}: ${failure.error}`);
    ctx.out.line();
    ctx.out.line(
      `${shown.length} node(s) shown; ${report.hybridNodes} hybrid nodes in the account and Region.`,
    );
    const pending = shown.some((n) => n.actions.length > 0);
    if (values.apply !== true && pending)
      ctx.out.line("Dry run: nothing was changed. Run with --apply to do it.");
    return report.failures.length > 0 ? EXIT.partial : EXIT.ok;
  },
};
