/** Dictionary counting: the check, the fleet-wide window of unknown recipients across connections, and what an upstream's "unknown" looks like. */
export { dictionary } from "./dictionary.ts";
export { type BadRecipientCounters, BadRecipientWindow, type BadRecipientWindowConfig } from "./bad-recipient-window.ts";
export { saysUnknownRecipient } from "./unknown-user.ts";
