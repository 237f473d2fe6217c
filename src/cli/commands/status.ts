import { duration, iso } from "../output";
import { EXIT } from "../context";
import type { Command } from "./command";

export const status: Command = {
  name: "status",
  synopsis: "status [POOL]",
  summary: "each pool's activation, slots, registrations, expiry and lease; nodes against the tier",
  help: `For every pool (or POOL): the current activation, slots handed out of its limit, the
registrations SSM counted, when it expires, and the rotation lease (free, or held by whom until
when); then the account's hybrid managed nodes against the standard tier's 1,000.`,
  options: {},
  arity: [0, 1],
  async run(ctx, args) {
    const report = await ctx.operations.admin(ctx.vendor()).status(args[0]);
    if (ctx.out.json) {
      ctx.out.data({
        ...report,
        now: iso(report.now),
        pools: report.pools.map((p) => ({
          ...p,
          expiresAt: iso(p.expiresAt),
          ...(p.lease && { lease: { owner: p.lease.owner, until: iso(p.lease.until) } }),
        })),
      });
      return EXIT.ok;
    }
    ctx.out.table(
      ["POOL", "ACTIVATION", "SLOTS", "REGISTERED", "EXPIRES IN", "LEASE"],
      report.pools.map((p) => [
        p.configured ? p.pool : `${p.pool} (not configured)`,
        p.activationId === undefined ? "(none yet)" : `${p.activationId}${p.revoked ? " (revoked)" : ""}`,
        p.limit === undefined ? undefined : `${p.issued ?? 0}/${p.limit}`,
        p.registrationsCount,
        p.expiresAt === undefined ? undefined : duration(p.expiresAt - report.now),
        p.lease ? `held by ${p.lease.owner} for ${duration(p.lease.until - report.now)}` : "free",
      ]),
    );
    const headroom = Math.max(0, report.tierLimit - report.hybridNodes);
    ctx.out.line();
    ctx.out.line(
      `Hybrid managed nodes in this account and Region: ${report.hybridNodes} of ${report.tierLimit} (standard tier); ${headroom} left.`,
    );
    return EXIT.ok;
  },
};
