/**
 * One operator knob, declared once where it is read: its variable, its default as an operator
 * would write it ("" for none), and the parser that turns text into the value or throws a
 * ConfigError naming the variable.
 */
export interface Setting<T> {
  readonly variable: string;
  readonly fallback: string;
  readonly parse: (variable: string, text: string) => T;
}

export function setting<T>(variable: string, fallback: string, parse: (variable: string, text: string) => T): Setting<T> {
  return { variable, fallback, parse };
}
