import { defineConfig } from "vite";

// The signaling service serves this build at `/` and `/m/ROOM`; assets live under /assets/.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  server: { proxy: { "/api": "http://127.0.0.1:8787", "/ws": { target: "ws://127.0.0.1:8787", ws: true } } },
});
