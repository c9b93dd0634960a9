/**
 * Build dist/: an ES module, a CommonJS module, the classic-script browser build (global
 * `MicroSocket`) and one bundled .d.ts (copied as .d.cts for `require` users).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { build } from "esbuild";

const common = { bundle: true, target: "es2020", logLevel: "warning", legalComments: "none" };
await Promise.all([
  build({ ...common, entryPoints: ["src/index.ts"], format: "esm", outfile: "dist/index.js" }),
  build({ ...common, entryPoints: ["src/index.ts"], format: "cjs", outfile: "dist/index.cjs" }),
  build({ ...common, entryPoints: ["src/browser.ts"], format: "iife", outfile: "dist/microsockets.global.js" }),
]);
execFileSync(
  process.execPath,
  [
    "node_modules/dts-bundle-generator/dist/bin/dts-bundle-generator.js",
    "--silent",
    "--no-banner",
    "--project",
    "tsconfig.build.json",
    "-o",
    "dist/index.d.ts",
    "src/index.ts",
  ],
  { stdio: "inherit" },
);
copyFileSync("dist/index.d.ts", "dist/index.d.cts");
