/**
 * sledlog: a signed, grow-only event log replicated as a Yjs CRDT.
 *
 * Layout: `core/` is pure (ids, entry codec, signing, update codec, guard, fork rule, query); `store/` and
 * `log/` add I/O (key file, LevelDB, the commit pipeline, subscriptions, consumers); `ingest/` is
 * the bounded bus with gap sentinels; `node/` runs a log with HTTP and replication.
 */
export * from './errors.js'
export * from './core/ids.js'
export * from './core/entry.js'
export * from './core/signing.js'
export * from './core/update-codec.js'
export * from './core/guard.js'
export * from './core/fork.js'
export * from './core/query.js'
export * from './store/identity.js'
export * from './store/level-store.js'
export * from './log/sled-log.js'
export * from './log/open-log.js'
export * from './log/subscription.js'
export * from './log/consumer.js'
export * from './ingest/bus.js'
export * from './ingest/writer.js'
export * from './node/node.js'
export * from './node/acked-appends.js'
