/** Dependencies point inward: the core knows no SDK, no HTTP; the emulator knows nothing of src/. */
module.exports = {
  forbidden: [
    {
      name: "core-stays-pure",
      comment: "src/core holds the vend algorithm; it must not import AWS SDKs, HTTP or any outer layer.",
      severity: "error",
      from: { path: "^src/core" },
      to: {
        path: "(^src/(aws|http|cli|local)|@aws-sdk|@aws-lambda-powertools|^node:http|^http$|^https$|aws-lambda)",
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
      comment: "The emulator implements SSM from the API reference, never from our code (DESIGN.md §6).",
      severity: "error",
      from: { path: "^emulator" },
      to: { path: "^src/" },
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
