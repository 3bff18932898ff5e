/**
 * The Containerfile's runtime image, built without a container engine (none can start a
 * container on these machines): its base as a Debian root filesystem made by mmdebstrap
 * (`--variant=minbase`, what Debian's `-slim` images are made from, of the release the final
 * FROM names), then the final stage's own instructions applied to it in order: COPY of the
 * binary, each RUN through `/bin/sh -c` chrooted into it, ENV, USER, WORKDIR. The base is cached
 * in node_modules/.cache/image/ like the unpacked MTAs, so only the first run downloads it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Instruction } from "./recipe-formats.ts";
import { envPairs } from "./recipe-formats.ts";
import { ROOT, tempDir } from "./server.ts";

const CACHE = join(ROOT, "node_modules", ".cache", "image");
/** Docker's PATH for RUN and for the container when the image sets none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ImageRoot {
  /** The root filesystem on the host. */
  readonly dir: string;
  /** The image's ENV, with Docker's PATH. */
  readonly env: Record<string, string>;
  readonly user: string;
  readonly workdir: string;
  /** Instructions recorded for the container rather than applied to the filesystem (ENTRYPOINT, CMD, HEALTHCHECK, …). */
  readonly config: Record<string, string>;
}

function runOrThrow(command: string, args: string[], what: string, env?: Record<string, string>): string {
  const result = spawnSync(command, args, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new Error(`${what}: ${command} could not run (${result.error.message})`);
  if (result.status !== 0) throw new Error(`${what}: ${command} exited ${result.status}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** The Debian release of `debian:bookworm-slim` (or `docker.io/library/debian:…-slim`). */
export function debianRelease(from: string): string {
  const match = /^(?:docker\.io\/library\/)?debian:([a-z]+)-slim$/.exec(from);
  if (!match) throw new Error(`the final FROM ${JSON.stringify(from)} is not a debian:RELEASE-slim image; this test builds only those`);
  return match[1];
}

/** A minbase root of `release` as a tar file, made once (about 30 s and 60 MB from Debian's mirror). */
export function debianBase(release: string): string {
  const tar = join(CACHE, `debian-${release}-minbase.tar`);
  if (existsSync(tar)) return tar;
  mkdirSync(CACHE, { recursive: true });
  const partial = `${tar}.partial`;
  rmSync(partial, { force: true });
  runOrThrow(
    "mmdebstrap",
    ["--quiet", "--variant=minbase", "--mode=root", "--format=tar", release, partial],
    `making the ${release} base with mmdebstrap (Debian's mmdebstrap package)`,
  );
  renameSync(partial, tar);
  return tar;
}

/**
 * Runs `argv` inside `root` the way a container engine runs a process: its own mount namespace
 * with /proc mounted, chrooted, in `workdir`, optionally through the image's setpriv as `user`
 * with `capabilities` as its whole bounding set. Every step execs, so the returned command's
 * PID is the program's own.
 */
export function inRoot(
  root: string,
  argv: string[],
  options: { workdir?: string; user?: string; capabilities?: string[] } = {},
): { command: string; args: string[] } {
  const privileges = options.user === undefined ? [] : [
    "/usr/bin/setpriv",
    `--reuid=${options.user}`,
    `--regid=${options.user}`,
    "--init-groups",
    `--bounding-set=-all${(options.capabilities ?? []).map((c) => `,+${c}`).join("")}`,
    "--inh-caps=-all",
  ];
  const host =
    'root=$1; shift; mount -t proc proc "$root/proc" && exec chroot "$root" /bin/sh -c \'cd "$1" && shift && exec "$@"\' sh "$@"';
  return {
    command: "unshare",
    args: ["--mount", "--propagation", "private", "/bin/sh", "-c", host, "sh", root, options.workdir ?? "/", ...privileges, ...argv],
  };
}

/**
 * The final stage of `steps` applied to a fresh copy of its base, with `binary` as what its
 * `COPY --from=build` brings. Throws on an instruction this builder does not know.
 */
export function buildImageRoot(steps: readonly Instruction[], binary: string): ImageRoot {
  const froms = steps.filter((s) => s.keyword === "FROM");
  const final = steps.slice(steps.indexOf(froms.at(-1)!));
  const release = debianRelease(final[0].args);
  const dir = join(tempDir("mxscreen-image-"), "root");
  mkdirSync(dir);
  runOrThrow("tar", ["-xf", debianBase(release), "-C", dir], "unpacking the base");
  // An engine gives RUN the host's resolver; apt-get inside needs it.
  copyFileSync("/etc/resolv.conf", join(dir, "etc/resolv.conf"));
  let env: Record<string, string> = { PATH: DEFAULT_PATH };
  let user = "root";
  let workdir = "/";
  const config: Record<string, string> = {};
  for (const step of final.slice(1)) {
    switch (step.keyword) {
      case "COPY": {
        const match = /^--from=build \S+ (\S+)$/.exec(step.args);
        if (!match) throw new Error(`Containerfile:${step.line}: COPY ${step.args} is not the binary from the build stage`);
        copyFileSync(binary, join(dir, match[1]));
        chmodSync(join(dir, match[1]), 0o755);
        break;
      }
      case "RUN":
        runOrThrow("unshare", inRoot(dir, ["/bin/sh", "-c", step.args], { workdir }).args, `Containerfile:${step.line}: RUN`, {
          ...env,
          HOME: "/root",
        });
        break;
      case "ENV":
        env = { ...env, ...envPairs(step.args) };
        break;
      case "USER":
        user = step.args;
        break;
      case "WORKDIR":
        workdir = step.args;
        mkdirSync(join(dir, workdir), { recursive: true });
        break;
      case "VOLUME":
      case "EXPOSE":
      case "HEALTHCHECK":
      case "STOPSIGNAL":
      case "ENTRYPOINT":
      case "CMD":
        config[step.keyword] = step.args;
        break;
      default:
        throw new Error(`Containerfile:${step.line}: ${step.keyword} is not an instruction this test's builder applies`);
    }
  }
  return { dir, env, user, workdir, config };
}
