/** A setting that cannot be used: names the variable, the value and what is expected. */
export class ConfigError extends Error {
  constructor(readonly variable: string, readonly value: string, expected: string) {
    super(`${variable}=${JSON.stringify(value)} is not valid: expected ${expected}`);
    this.name = "ConfigError";
  }
}
