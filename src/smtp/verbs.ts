import { reply } from "../checks/reply.ts";

/** Where the session may be when a command line is acted on (waits and DATA read no commands). */
export type Phase = "greeted" | "ready" | "mail" | "rcpt" | "chunks";

/** The session's method that acts on a verb. */
export type Handler = "helo" | "mail" | "rcpt" | "data" | "bdat" | "rset" | "noop" | "quit" | "vrfy" | "help" | "starttls" | "refuse";

export interface Verb {
  readonly handler: Handler;
  /**
   * The phases it may not come in, and the reply it gets there (RFC 5321 4.1.4's order of
   * commands); every other phase takes it.
   */
  readonly outOfSequence: Partial<Readonly<Record<Phase, string>>>;
  /** RFC 2920 3.1: it must end a pipelined group; a command sent behind it before our reply is the pipelining check's. */
  readonly endsGroup: boolean;
  /** The EHLO keyword that offers it, when it is an extension (RFC 5321 4.1.1.1). */
  readonly ehlo?: string;
  /** Listed in the reply to HELP. */
  readonly help: boolean;
}

const NO_HELO = reply(503, "5.5.1", "Error: send HELO/EHLO first");
const NESTED_MAIL = reply(503, "5.5.1", "Error: nested MAIL command");
const NEED_MAIL = reply(503, "5.5.1", "Error: need MAIL command");
const NEED_RCPT = reply(503, "5.5.1", "Error: need RCPT command");
const TLS_IN_TRANSACTION = reply(503, "5.5.1", "Error: STARTTLS in the middle of a mail transaction");
/** RFC 3030 2: between the chunks of a message only BDAT (and RSET, QUIT, NOOP) may come. */
const IN_CHUNKS = reply(503, "5.5.1", "Error: BDAT transaction in progress");

const ANYWHERE = {};

/** A verb we know and refuse with 502 (RFC 5321 4.2.4): not offered, and never counted as unknown. */
function refused(endsGroup: boolean): Verb {
  return { handler: "refuse", outOfSequence: ANYWHERE, endsGroup, help: false };
}

/**
 * Every verb the session knows, in the way of postscreen's command_table (postscreen_smtpd.c):
 * who acts on it, where it may come, whether it ends a pipelined group, how EHLO offers it,
 * whether HELP lists it. The order is HELP's.
 */
export const VERBS: Readonly<Record<string, Verb>> = {
  HELO: { handler: "helo", outOfSequence: ANYWHERE, endsGroup: true, help: true },
  EHLO: { handler: "helo", outOfSequence: ANYWHERE, endsGroup: true, help: true },
  MAIL: {
    handler: "mail",
    outOfSequence: { greeted: NO_HELO, mail: NESTED_MAIL, rcpt: NESTED_MAIL, chunks: NESTED_MAIL },
    endsGroup: false,
    help: true,
  },
  RCPT: { handler: "rcpt", outOfSequence: { greeted: NEED_MAIL, ready: NEED_MAIL, chunks: IN_CHUNKS }, endsGroup: false, help: true },
  DATA: {
    handler: "data",
    outOfSequence: { greeted: NEED_MAIL, ready: NEED_MAIL, mail: NEED_RCPT, chunks: IN_CHUNKS },
    endsGroup: true,
    help: true,
  },
  /** RFC 3030: may be pipelined; where it may come is the session's to say once its chunk is read (refused, it is read all the same). */
  BDAT: { handler: "bdat", outOfSequence: ANYWHERE, endsGroup: false, ehlo: "CHUNKING", help: false },
  RSET: { handler: "rset", outOfSequence: ANYWHERE, endsGroup: false, help: true },
  NOOP: { handler: "noop", outOfSequence: ANYWHERE, endsGroup: true, help: true },
  QUIT: { handler: "quit", outOfSequence: ANYWHERE, endsGroup: true, help: true },
  VRFY: { handler: "vrfy", outOfSequence: ANYWHERE, endsGroup: true, help: true },
  HELP: { handler: "help", outOfSequence: ANYWHERE, endsGroup: false, help: true },
  STARTTLS: {
    handler: "starttls",
    outOfSequence: { mail: TLS_IN_TRANSACTION, rcpt: TLS_IN_TRANSACTION, chunks: TLS_IN_TRANSACTION },
    endsGroup: true,
    ehlo: "STARTTLS",
    help: false,
  },
  EXPN: refused(true),
  TURN: refused(true),
  AUTH: refused(true),
  ETRN: refused(false),
  ATRN: refused(false),
  SEND: refused(false),
  SOML: refused(false),
  SAML: refused(false),
};

/** The reply to HELP. */
export const HELP_REPLY = reply(214, "2.0.0", `Commands: ${Object.keys(VERBS).filter((verb) => VERBS[verb].help).join(" ")}`);
