#!/usr/bin/env bun
// `npm run build`: one executable for linux-x64 (bun build --compile) holding the server, the
// CLI, the session worker, the migrations and libSQL's native addon. Runs on Bun only, as the
// compiler is Bun's; `--outfile PATH` writes elsewhere than dist/mxscreen (the tests do).
import { readFile, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values } = parseArgs({ options: { outfile: { type: "string", default: join(root, "dist", "mxscreen") } }, strict: true });

/** The addon for the one target we build: Debian, Ubuntu and the container image are glibc. */
const LIBSQL_ADDON = "@libsql/linux-x64-gnu";
/** Where `--compile` puts every file of the build on Linux, under its path relative to `root`. */
const EMBEDDED_ROOT = "file:///$bunfs/root/";

/**
 * libsql picks its addon with `require(`@libsql/${target}`)`: a path the bundler cannot know,
 * so the `.node` file was left out and the binary died at start with "Cannot find module
 * '@libsql/linux-x64-gnu'". Bun embeds an addon only when it is required by a literal path.
 */
const libsqlAddon = {
  name: "libsql-addon",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/](index|promise)\.js$/ }, async ({ path }) => {
      const source = await readFile(path, "utf8");
      const dynamic = "require(`@libsql/${target}`)";
      if (!source.includes(dynamic)) {
        throw new Error(
          `${path} no longer loads its addon with ${dynamic}: look at how it does now and update ${fileURLToPath(import.meta.url)}`,
        );
      }
      return { contents: source.replace(dynamic, `require(${JSON.stringify(LIBSQL_ADDON)})`), loader: "js" };
    });
  },
};

/**
 * In the bundle every module's `import.meta.url` is the executable's own, so the worker and
 * the migrations, found relative to the module that names them, would be looked for in the
 * wrong place. Our modules get back the URL of where their own file sits in the executable.
 */
const ownUrls = {
  name: "own-urls",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, "utf8");
      const inside = relative(root, path);
      if (inside.startsWith("..") || inside.startsWith("node_modules") || !source.includes("import.meta.url")) return undefined;
      return { contents: source.replaceAll("import.meta.url", JSON.stringify(EMBEDDED_ROOT + inside)), loader: "ts" };
    });
  },
};

const result = await Bun.build({
  entrypoints: [join(root, "src/cli/binary.ts"), join(root, "workers/session-worker.ts")],
  root,
  compile: {
    target: "bun-linux-x64",
    outfile: values.outfile,
    assets: [join(root, "migrations")],
    // A bunfig.toml in the directory it starts from could preload code into the server.
    autoloadBunfig: false,
  },
  // Embedded in the executable, so a BUG line's stack names our source files and lines.
  sourcemap: "linked",
  plugins: [libsqlAddon, ownUrls],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  console.error(`mxscreen build: bun build --compile failed; nothing written to ${values.outfile}`);
  process.exit(1);
}
// The maps are inside the executable too; the copies written beside it are of no use.
for (const output of result.outputs) if (output.path.endsWith(".map")) await rm(output.path, { force: true });
console.log(`mxscreen build: wrote ${values.outfile}`);
