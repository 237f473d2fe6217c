/**
 * The one server bootstrap of the long-running processes (`activation-broker serve` and
 * `npm start`): listen, the periodic slot-theft check, and the stop on SIGINT/SIGTERM.
 */
import type { AddressInfo } from "node:net";
import { createBroker, startReconcileTimer, type Broker, type RequestPathDeps } from "../composition";
import type { Logger } from "../core/ports";
import { createNodeServer, exitOnUncaughtErrors, listen, type NodeServerOptions } from "../http/node-server";
import type { Settings } from "../settings";

export interface RunningServer {
  readonly url: string;
  readonly address: AddressInfo;
  /**
   * Stops the timer and the server. `drain` waits for requests in flight (serve: a replica leaving
   * its load balancer); `now` drops them (npm start, tests: nothing is waiting on them).
   */
  close(mode: "drain" | "now"): Promise<void>;
}

/** Where a long-running process listens (`serve`'s --port/--host, `npm start`'s PORT). */
export interface Listen {
  readonly port: number;
  readonly host: string;
  /** What chose the port (PORT, --port), so a refusal says what to change. */
  readonly portSetting: string;
  /**
   * Local mode: without BROKER_PUBLIC_URL the install scripts carry this server's own URL, known
   * only after listen (port 0). A caller's Host header still never chooses it.
   */
  readonly ownUrlIsPublic?: boolean;
}

/**
 * The broker of a long-running process — `serve`, `npm start` and the benchmark's one-process
 * shape — on its Node server: one wiring for all three.
 */
export async function startBrokerServer(
  deps: RequestPathDeps & { readonly listen: Listen },
): Promise<{ broker: Broker; server: RunningServer }> {
  const broker = createBroker(deps);
  const server = await startServer({ broker, settings: deps.settings, logger: deps.logger, ...deps.listen });
  return { broker, server };
}

async function startServer(
  options: {
    readonly broker: Broker;
    readonly settings: Settings;
    readonly logger: Logger;
  } & Listen,
): Promise<RunningServer> {
  const { broker, settings, logger } = options;
  const serverOptions: NodeServerOptions = {
    logger,
    limits: settings.server,
    ...(settings.publicUrl !== undefined && { publicUrl: settings.publicUrl }),
  };
  const server = createNodeServer(broker.handler, serverOptions);
  const address = await listen(server, options.port, options.host, options.portSetting);
  const url = `http://${options.host}:${address.port}`;
  if (options.ownUrlIsPublic) serverOptions.publicUrl ??= url;
  const stopReconciling = startReconcileTimer(broker, settings.reconcileIntervalMs, logger);
  return {
    url,
    address,
    async close(mode) {
      stopReconciling();
      if (mode === "now") server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The process around a running server: what an error that escapes every handler does, and the
 * stop on SIGINT/SIGTERM. Resolves once `close` has finished.
 */
export function serveUntilSignal(logger: Logger, close: () => Promise<void>): Promise<void> {
  // The process-level error policy of both long-running commands (crash-only): one call site.
  exitOnUncaughtErrors(logger);
  return new Promise((resolve, reject) => {
    const stop = () => close().then(resolve, reject);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
