/**
 * Preloaded (`node --import`) into a peer server that has no signal handling of its own (the seed
 * reference), so that SIGTERM ends it through process.exit() and `--cpu-prof` gets to write its
 * profile. The peer's own code stays as the seed wrote it.
 */
process.on("SIGTERM", () => process.exit(0));
