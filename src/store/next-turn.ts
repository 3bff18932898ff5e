/**
 * Lets the event loop answer sockets before going on with a long piece of work: a query of a
 * local file (`file:`, an embedded replica) answers without I/O, so a catch-up of 200,000
 * changes in pages awaited back to back held every connection for most of a second (measured),
 * and so would writing a local copy of millions of entries.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
