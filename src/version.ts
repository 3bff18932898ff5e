import PACKAGE from "../package.json" with { type: "json" };

/**
 * The one version of mxscreen, package.json's: read from it here, and bundled into the single
 * binary at build time, so the start line, `--version` and the metrics cannot disagree with it.
 */
export const VERSION: string = PACKAGE.version;
