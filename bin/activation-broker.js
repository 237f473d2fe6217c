#!/usr/bin/env node
// The CLI is bundled by `npm run build` (esbuild) into dist/; see src/cli/main.ts.
import "../dist/activation-broker.mjs";
