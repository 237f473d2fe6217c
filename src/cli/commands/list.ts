import { EXIT } from "../context";
import { duration, iso } from "../output";
import type { Command } from "./command";

export const list: Command = {
  name: "list",
  synopsis: "list [--all]",
  summary: "every activation this deployment created, with its state",
  help: `States: current (the pool hands it out), standby (the pool's next activation, ready before it
is needed), spent (superseded), expired, orphaned (its rotation never committed), revoked.
JANITOR says what the next cleanup does with it and why.
  --all   also list other deployments' and people's activations (state: foreign)`,
  options: { all: { type: "boolean" } },
  arity: [0, 0],
  async run(ctx, _args, values) {
    const survey = await ctx.operations.janitor.survey();
    const now = Date.now();
    const entries = survey.activations.filter((a) => values.all === true || a.state !== "foreign");
    if (ctx.out.json) {
      ctx.out.data(
        entries.map((e) => ({
          activationId: e.activation.activationId,
          pool: e.pool,
          generation: e.generation,
          state: e.state,
          registrationsCount: e.activation.registrationsCount,
          registrationLimit: e.activation.registrationLimit,
          issued: e.issued,
          createdAt: iso(e.activation.createdAt),
          expiresAt: iso(e.activation.expiresAt),
          janitor: e.action,
          reason: e.reason,
        })),
      );
      return EXIT.ok;
    }
    ctx.out.table(
      ["ACTIVATION", "POOL", "GEN", "STATE", "REGISTERED", "EXPIRES IN", "JANITOR"],
      entries.map((e) => [
        e.activation.activationId,
        e.pool,
        e.generation,
        e.state,
        `${e.activation.registrationsCount}/${e.activation.registrationLimit}`,
        duration(e.activation.expiresAt - now),
        `${e.action}: ${e.reason}`,
      ]),
    );
    return EXIT.ok;
  },
};
