/**
 * Run the bats suites by hand:
 *   npx tsx test/agent/support/serve.ts      # prints export lines, keeps serving
 *   (in another shell, after the exports) node_modules/bats/bin/bats test/agent
 */
import { startBatsEnvironment } from "./environment";

const environment = await startBatsEnvironment();
for (const [key, value] of Object.entries(environment.env)) console.log(`export ${key}=${value}`);
console.log("# serving; Ctrl-C to stop");
const stop = () => void environment.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
