/**
 * The entry of the single binary (`npm run build`): `mxscreen serve` runs the server, any other
 * command is the CLI's (`mxscreen ban ls`, `mxscreen --version` …).
 */
import process from "node:process";

if (process.argv[2] === "serve") await import("../main.ts");
else await import("./mxscreen.ts");
