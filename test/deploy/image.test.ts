import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { test } from "../harness.ts";
import { run } from "../helpers/cli.ts";
import { buildImageRoot, inRoot } from "../helpers/image-root.ts";
import { parseContainerfile } from "../helpers/recipe-formats.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { freePort, ROOT, startServer, tempDir } from "../helpers/server.ts";

const containerfile = () => parseContainerfile(readFileSync(join(ROOT, "Containerfile"), "utf8"));

/** One `Name:\tvalue` line of /proc/PID/status. */
function status(pid: number, name: string): string {
  return new RegExp(`^${name}:\\s+(.*)$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1];
}

const NET_BIND_SERVICE = (1n << 10n).toString(16).padStart(16, "0");

// The image holds the one binary `npm run build` makes with Bun whatever runs the suite: a Deno
// run of this test would only repeat the Bun run's.
test(
  "Containerfile, built without an engine: its base from Debian, its steps applied, the binary serves port 25 as the image's user with only its one capability, and the HEALTHCHECK passes, then fails once it stops",
  async () => {
    assert.equal(
      process.getuid?.(),
      0,
      "needs root: mmdebstrap, chroot, a mount namespace and setpriv (no container engine runs containers here)",
    );
    const build = tempDir();
    const binary = join(build, "mxscreen");
    const built = await run("npm", ["run", "-s", "build", "--", "--outfile", binary], ROOT, { HOME: tempDir() });
    assert.equal(built.code, 0, built.stdout + built.stderr);
    const image = buildImageRoot(containerfile(), binary);

    // What the RUN step left: the capability on the binary, the tool that set it gone, the user and its volume.
    const installed = join(image.dir, "usr/local/bin/mxscreen");
    assert.match(spawnSync("getcap", [installed], { encoding: "utf8" }).stdout, /cap_net_bind_service=ep/);
    const dpkg = spawnSync("unshare", inRoot(image.dir, ["dpkg-query", "-W", "-f", "${db:Status-Status}", "libcap2-bin"]).args, {
      encoding: "utf8",
    });
    assert.notEqual(dpkg.stdout, "installed", "libcap2-bin is purged in the same layer");
    assert.match(
      readFileSync(join(image.dir, "etc/passwd"), "utf8"),
      new RegExp(`^${image.user}:x:10025:\\d+:`, "m"),
      "the image's user is uid 10025, as the README says",
    );
    const volume = JSON.parse(image.config.VOLUME) as string[];
    assert.deepEqual(volume, [image.workdir]);
    const data = statSync(join(image.dir, image.workdir));
    assert.deepEqual([data.uid, data.mode & 0o777], [10025, 0o750]);

    const adminPort = await freePort();
    // Port 25 (the image's own) on an address of this test's, so no MTA of the machine is in the way.
    const env = {
      ...image.env,
      MXSCREEN_LISTEN: "127.0.25.1:25",
      MXSCREEN_ADMIN_LISTEN: `127.0.25.1:${adminPort}`,
      MXSCREEN_HOSTNAME: "mx.image.example",
      MXSCREEN_GREET_WAIT: "200ms",
    };
    const entrypoint = [...JSON.parse(image.config.ENTRYPOINT), ...JSON.parse(image.config.CMD)] as string[];
    const container = (capabilities: string[], program = entrypoint) =>
      inRoot(image.dir, program, { user: image.user, workdir: image.workdir, capabilities });

    // The same binary without its file capability may not bind port 25 (Bun's words for EACCES: "Failed to listen at").
    copyFileSync(installed, join(image.dir, "usr/local/bin/mxscreen-bare"));
    await assert.rejects(
      startServer(env, { dir: tempDir(), command: container(["net_bind_service"], ["/usr/local/bin/mxscreen-bare", "serve"]) }),
      /Failed to listen at 127\.0\.25\.1|EACCES/,
    );
    // An engine that withholds the capability (--cap-drop=ALL alone): the kernel refuses to start a program whose file capability it cannot grant.
    await assert.rejects(startServer(env, { dir: tempDir(), command: container([]) }), /Operation not permitted/);
    const server = await startServer(env, { dir: tempDir(), command: container(["net_bind_service"]) });
    const pid = server.process.pid!;
    assert.match(status(pid, "Uid"), /^10025\s+10025\s+10025\s+10025$/);
    assert.equal(status(pid, "CapEff"), NET_BIND_SERVICE, "port 25 by its one capability, nothing else");
    assert.equal(status(pid, "CapBnd"), NET_BIND_SERVICE);
    const client = await RawClient.open(25, "127.0.25.2", "127.0.25.1");
    await client.until(/^220 /m);
    assert.match(client.text, /220 mx\.image\.example ESMTP\r\n$/);
    client.write("QUIT\r\n");
    await client.waitClosed();
    assert.equal(statSync(join(image.dir, image.workdir, "mxscreen.db")).uid, 10025, "the database in the volume, the user's");

    // The README's `podman exec mxscreen mxscreen ban ls`: the CLI on PATH, on the same store, as the image's user.
    const { command: exec, args: execArgs } = inRoot(image.dir, ["mxscreen", "ban", "ls", "--json"], {
      user: image.user,
      workdir: image.workdir,
      capabilities: ["net_bind_service"],
    });
    const bans = await run(exec, execArgs, tempDir(), env);
    assert.equal(bans.code, 0, bans.stderr);
    assert.deepEqual(JSON.parse(bans.stdout), []);

    // HEALTHCHECK's command exactly as written, run as the engine runs it: in the container, as its user, with its environment.
    const healthcheck = JSON.parse(/CMD (\[.*\])$/.exec(image.config.HEALTHCHECK)![1]) as string[];
    const probe = () => {
      const { command, args } = inRoot(image.dir, healthcheck, {
        user: image.user,
        workdir: image.workdir,
        capabilities: ["net_bind_service"],
      });
      return run(command, args, tempDir(), env);
    };
    const healthy = await probe();
    assert.equal(healthy.code, 0, `HEALTHCHECK failed on a running server: ${healthy.stdout}${healthy.stderr}`);
    assert.equal(await server.stop(), 0);
    const down = await probe();
    assert.notEqual(down.code, 0, "HEALTHCHECK passes with no server");
  },
  { timeoutMs: 180_000, runsOn: "bun" },
);
