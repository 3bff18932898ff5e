/** Dictionary counting: the check and the fleet-wide window of unknown recipients across connections. */
export { dictionary } from "./dictionary.ts";
export { type BadRecipientCounters, BadRecipientWindow, type BadRecipientWindowConfig } from "./bad-recipient-window.ts";
