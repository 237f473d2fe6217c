/**
 * The `activation-broker` command's entry point (`npm run build` bundles this file): runs the
 * command line and turns its outcome into an exit code (src/entry/run.ts).
 */
import { main, USAGE } from "../cli/main";
import { runMain } from "./run";

runMain("activation-broker", USAGE, () => main(process.argv.slice(2)));
