import { EXIT, UsageError, type Context } from "../context";
import { iso } from "../output";
import type { Command } from "./command";

/** The id SSM gives a hybrid managed node. */
const MANAGED_NODE_ID = /^mi-[0-9a-f]{17}$/;

export const nodes: Command = {
  name: "nodes",
  synopsis: "nodes [--stale DAYS] [--duplicates] [--activation ID] [--apply] | nodes deregister MI_ID…",
  summary: "managed nodes this deployment registered, with hygiene actions; deregister some",
  help: `Lists this deployment's managed nodes (the ones carrying its tag) with their host name and
connection state, and what hygiene would do. Name tags (Name = the node's ComputerName) follow
each pool's "hygiene.nameTag" setting.
  --stale DAYS      select nodes ConnectionLost for more than DAYS days
  --duplicates      select older registrations of a re-imaged host (same ComputerName, a newer
                    node exists), ConnectionLost for more than --stale DAYS (default 1)
  --activation ID   only nodes registered with this activation
  --apply           deregister the selected nodes and add the Name tags (default: only report)

nodes deregister MI_ID… deregisters those nodes now (a server being retired or re-imaged): only
nodes of this deployment, so a mistyped id cannot remove someone else's server. Exit code 3 when
one of them is not this deployment's (the others are still deregistered).`,
  options: {
    stale: { type: "string" },
    duplicates: { type: "boolean" },
    activation: { type: "string" },
    apply: { type: "boolean" },
  },
  arity: [0, Number.MAX_SAFE_INTEGER],
  async run(ctx, args, values) {
    if (args[0] === "deregister") return deregister(ctx, args.slice(1));
    if (args.length > 0) throw new UsageError(`unexpected argument '${args[0]}' (see --help)`);
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

/** `nodes deregister MI_ID…`: this deployment's nodes only; the others are named and left alone. */
async function deregister(ctx: Context, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) throw new UsageError("usage: activation-broker nodes deregister MI_ID… (see --help)");
  const malformed = ids.find((id) => !MANAGED_NODE_ID.test(id));
  if (malformed !== undefined) {
    throw new UsageError(`'${malformed}' is not a managed node id (mi- and 17 hexadecimal digits)`);
  }
  const nodes = ctx.operations.inventory.nodes;
  const owned = new Set((await nodes.listOwned([])).map((n) => n.instanceId));
  const results: { instanceId: string; result: "deregistered" | "not this deployment's node" }[] = [];
  for (const instanceId of new Set(ids)) {
    if (!owned.has(instanceId)) {
      results.push({ instanceId, result: "not this deployment's node" });
      continue;
    }
    await nodes.deregister(instanceId);
    results.push({ instanceId, result: "deregistered" });
  }
  if (ctx.out.json) ctx.out.data(results);
  else
    ctx.out.table(
      ["INSTANCE", "RESULT"],
      results.map((r) => [r.instanceId, r.result]),
    );
  return results.every((r) => r.result === "deregistered") ? EXIT.ok : EXIT.notFound;
}
