#!/usr/bin/env node
// The CLI is bundled by `npm run build` (esbuild) into dist/; see src/entry/cli.ts.
import "../dist/activation-broker.mjs";
