import js from "@eslint/js";
import tseslint from "typescript-eslint";
import vitest from "@vitest/eslint-plugin";

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      "dist/**",
      "cdk.out/**",
      "infra/cdk.out/**",
      "coverage/**",
      "reports/**",
      ".stryker-tmp/**",
    ],
  },
  js.configs.recommended,
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  {
    // One composition root (docs/architecture.md): settings.ts alone reads the environment, and
    // every SDK client is built in src/aws/ with clients.ts's shared timeouts and retry strategy.
    files: ["src/**/*.ts", "bench/**/*.ts"],
    ignores: ["src/aws/**"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "NewExpression[callee.name=/^[A-Z][A-Za-z]*Client$/]",
          message: "Build SDK clients in src/aws/ with clientConfig (shared timeouts and retry strategy).",
        },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/settings.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read the environment in src/settings.ts only." },
      ],
    },
  },
  {
    files: ["test/**/*.ts"],
    plugins: { vitest },
    rules: {
      // A focused or skipped test silently shrinks the suite.
      "vitest/no-focused-tests": "error",
      "vitest/no-disabled-tests": "error",
    },
  },
);
