/**
 * The words MTAs use when a mailbox does not exist or is not theirs to take: Postfix's
 * "User unknown in local recipient table", Exim's "Unrouteable address", OpenSMTPD's "Invalid
 * recipient", qmail chkuser's "sorry, no mailbox here by that name", "451 No such user" (seed 003),
 * and a relay refused ("Relay access denied"), as our own check for domains not ours counts it.
 */
const UNKNOWN_WORDS =
  /no such (user|mailbox|recipient|address|account)|user (unknown|not found|does ?n[o']t exist)|unknown (user|recipient|mailbox|address|local[- ]part)|invalid (recipient|mailbox|user)|recipient (unknown|not found|does ?n[o']t exist)|mailbox (unknown|not found|does ?n[o']t exist)|unrouteable address|no mailbox here|relay(ing)? (access )?denied/i;

/**
 * The upstream's answer to RCPT says the recipient does not exist (so a harvester guessed
 * wrong), as opposed to a refusal for another reason (policy, a full mailbox, a greylist):
 * RFC 3463's X.1.1 "bad destination mailbox address", OpenSMTPD's `524 5.2.4` (its expansion of
 * the address failed), or the words above, after a 4xx or a 5xx.
 */
export function saysUnknownRecipient(code: number, text: string): boolean {
  if (code < 400 || code >= 600) return false;
  const enhanced = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(text);
  if (enhanced !== null && enhanced[2] === "1" && enhanced[3] === "1") return true;
  if (code === 524 && enhanced !== null && enhanced[2] === "2" && enhanced[3] === "4") return true;
  return UNKNOWN_WORDS.test(text);
}
