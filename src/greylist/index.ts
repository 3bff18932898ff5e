/** Greylisting: the check (with its triplet key) and the store of triplets a node follows in memory. */
export { greylist, greylistTriplet } from "./greylist.ts";
export { type GreylistConfig, GreylistStore, type GreylistVerdict } from "./greylist-store.ts";
