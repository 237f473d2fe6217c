/** Dependencies point inward: the core knows no SDK, no HTTP; the emulator knows nothing of src/. */
module.exports = {
  forbidden: [
    {
      name: "core-stays-pure",
      comment: "src/core holds the vend algorithm; it must not import AWS SDKs, HTTP or any outer layer.",
      severity: "error",
      from: { path: "^src/core" },
      to: {
        path: "(^src/(aws|http|cli|entry|settings|composition|logging)|@aws-sdk|@aws-lambda-powertools|^node:http|^http$|^https$|aws-lambda)",
      },
    },
    {
      name: "core-no-node-io",
      comment: "The core is pure logic; time and randomness come through ports.",
      severity: "error",
      from: { path: "^src/core" },
      to: { path: "^(node:)?(fs|net|http|https|child_process)$", dependencyTypes: ["core"] },
    },
    {
      name: "emulator-is-independent",
      comment:
        "The emulator implements SSM from the API reference, never from our code (emulator/README.md).",
      severity: "error",
      from: { path: "^emulator" },
      to: { path: "^src/" },
    },
    {
      name: "production-code-stays-production",
      comment:
        "The emulator and the tests are equipment: only the local-mode entry point (npm start) may run the emulated AWS.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/entry/local" },
      to: { path: "^(emulator|test)/" },
    },
    {
      name: "adapters-take-values",
      comment:
        "Adapters are pure: they take settings, clients and loggers as values; entry points (src/entry) wire them.",
      severity: "error",
      from: { path: "^src/(core|aws|http)/" },
      to: { path: "^src/(settings|composition|logging|entry|cli)(\\.ts$|/)" },
    },
    {
      name: "cli-parses-entry-wires",
      comment:
        "The command line parses and prints; its entry point (src/entry/cli.ts) builds the app it runs.",
      severity: "error",
      from: { path: "^src/cli/" },
      to: { path: "^src/(composition|aws|http)(\\.ts$|/)", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "entry-points-are-leaves",
      comment: "Nothing imports an entry point: each one wires the app and starts it.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/entry/" },
      to: { path: "^src/entry/" },
    },
    {
      name: "entry-points-wire",
      comment:
        "One composition root: only src/entry/ builds the app from src/composition.ts; every other process (the benchmark too) starts through an entry point's builder.",
      severity: "error",
      from: { path: "^(src|bench)/", pathNot: "^src/entry/" },
      to: { path: "^src/composition\\.ts$", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "bench-measures-what-ships",
      comment:
        "The benchmark runs the broker as an entry point wires it (src/entry/), never pieces of the core or the HTTP shell put together its own way.",
      severity: "error",
      from: { path: "^bench/" },
      to: { path: "^src/(core|http|cli)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "no-circular",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
  },
};
