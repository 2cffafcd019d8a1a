/**
 * Vite in library mode builds dist/index.js (ESM) with React and the client left to the app;
 * `node build.ts` adds the declarations. Vitest runs test/*.spec.ts in jsdom against a real node.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  build: {
    lib: { entry: "src/index.ts", formats: ["es", "cjs"], fileName: (format) => (format === "es" ? "index.js" : "index.cjs") },
    rollupOptions: { external: ["react", "react/jsx-runtime", "@chat/client"] },
    sourcemap: true,
    emptyOutDir: true,
  },
  test: {
    include: ["test/**/*.spec.ts"],
    environment: "jsdom",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
