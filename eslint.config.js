// Lint runs inside the test command; warnings fail it (--max-warnings 0).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  {
    ignores: ["**/node_modules/**", "**/dist/**", "data/**", ".cluster/**", "bench/results/**", "test-results/**", "services/web/public/app.js"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    // k6 scripts run in k6's own runtime, not Node.
    files: ["load-tests/k6/**/*.js"],
    languageOptions: { globals: { __ENV: "readonly", __VU: "readonly", __ITER: "readonly", console: "readonly" } },
  },
  {
    files: ["services/web/src/**/*.ts", "services/web/public/**/*.js"],
    languageOptions: { globals: { ...globals.browser } },
  },
);
