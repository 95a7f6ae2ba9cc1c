/**
 * `sledlog node`: runs a node until SIGTERM or SIGINT, then shuts it down gracefully.
 *
 * Contract with whoever starts it (tests, the harness, orchestrators): once the node listens it
 * prints exactly one JSON line `{"event":"listening","url","sled"}` on stdout; everything else
 * goes to stderr as structured logs. On the first signal it stops taking work, drains the ingest
 * writer into the log, closes peers and the HTTP server, closes the log, and exits 0. A second
 * signal exits at once with 1.
 */
import { loadNodeSettings } from '../../config/load.js'
import type { NodeSettings, Origin, SettingName } from '../../config/settings.js'
import { SledNode } from '../../node/node.js'
import { parseFlags } from '../args.js'
import { CliError, EXIT } from '../cli-error.js'
import { explainOpenError } from '../data-dir.js'
import { help, type Command } from '../command.js'
import { write, type CliIo } from '../io.js'
import { createLogger, type Logger } from '../logger.js'
import { NodeWatch } from '../node-watch.js'

/** The flags of `sledlog node` (exported for checks of deployment files). */
export const NODE_FLAGS = {
  config: { type: 'string' },
  data: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  peer: { type: 'string', multiple: true },
  token: { type: 'string' },
  allow: { type: 'string', multiple: true },
  sync: { type: 'boolean' },
  'recovery-timeout': { type: 'string' },
  'ingest-capacity': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** `sledlog node`. */
export const node: Command = {
  name: 'node',
  help: `Usage: sledlog node --data DIR [options]

Runs a node: the HTTP API and the websocket sync endpoint on one port, replication with the
configured peers. Prints one JSON line {"event":"listening","url","sled"} on stdout when ready;
logs go to stderr as JSON lines. SIGTERM or SIGINT shuts down gracefully (queued ingest events
are written, the log is closed) and exits 0; a second signal exits at once with 1.

Options (environment variable and config file key in brackets):
  --data DIR               data directory: key and database        [SLEDLOG_DATA, data]
  --host HOST              address to listen on (127.0.0.1)        [SLEDLOG_HOST, host]
  --port PORT              HTTP and sync port, 0 = any free (7400) [SLEDLOG_PORT, port]
  --peer URL               peer to dial, ws://host:port; repeatable
                                                   [SLEDLOG_PEERS comma-separated, peers]
  --token SECRET           shared secret every peer must prove     [SLEDLOG_TOKEN, token]
                           (prefer the variable: flags show in the process list)
  --allow SLED             sled id allowed to connect; repeatable (default: any peer that
                           authenticates)            [SLEDLOG_ALLOW comma-separated, allow]
  --sync                   fsync every commit (survives power loss) [SLEDLOG_SYNC, sync]
  --recovery-timeout MS    how long a node with no entries of its own waits for its peers
                           before appending (10000)  [SLEDLOG_RECOVERY_TIMEOUT, recoveryTimeoutMs]
  --ingest-capacity N      ingest bus size in events; a burst past it is dropped and recorded
                           as a gap sentinel (10000) [SLEDLOG_INGEST_CAPACITY, ingestCapacity]
  --log-level LEVEL        fatal, error, warn, info, debug, trace or silent (info)
                                                   [SLEDLOG_LOG_LEVEL, logLevel]
  --config FILE            JSON config file with the keys above    [SLEDLOG_CONFIG]

Precedence: flags, then environment, then config file, then defaults. A relative "data" path
in a config file is relative to the file. Every problem is reported at once (CONFIG_INVALID).

Exit codes: 0 stopped by a signal after a clean shutdown; 1 failed to start (KEY_FILE_PERMISSIONS,
port in use…), failed shutdown, or a second signal; 2 bad flags or configuration.`,
  async run(argv, io) {
    const values = parseFlags(argv, NODE_FLAGS)
    if (values.help === true) return help(io, node)
    const { settings, origins } = await loadNodeSettings(values, io.env)
    return runNode(settings, origins, createLogger(settings.logLevel), io)
  },
}

/** Runs a node with resolved settings until a signal; resolves with the exit code. */
export async function runNode(
  settings: NodeSettings,
  origins: Readonly<Record<SettingName, Origin>>,
  logger: Logger,
  io: CliIo,
): Promise<number> {
  const sledNode = new SledNode({
    // The API logs unexpected handler failures (500 INTERNAL) through it.
    logger,
    dataDir: settings.data,
    host: settings.host,
    port: settings.port,
    peers: settings.peers,
    ...(settings.allow === undefined ? {} : { allow: settings.allow }),
    ...(settings.token === undefined ? {} : { token: settings.token }),
    sync: settings.sync,
    ...(settings.recoveryTimeoutMs === undefined ? {} : { recoveryTimeoutMs: settings.recoveryTimeoutMs }),
    ...(settings.ingestCapacity === undefined ? {} : { ingest: { capacity: settings.ingestCapacity } }),
  })

  // Handlers go in before start: a signal during start must still end in a clean stop.
  let signalled: NodeJS.Signals | null = null
  let onFirstSignal: (s: NodeJS.Signals) => void = () => undefined
  const firstSignal = new Promise<NodeJS.Signals>((resolve) => (onFirstSignal = resolve))
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== null) {
      logger.warn(
        { signal },
        'second signal: exiting now; ingest events not yet written are lost (recorded as a gap on restart)',
      )
      process.exit(EXIT.FAILURE)
    }
    signalled = signal
    logger.info({ signal }, 'shutting down')
    onFirstSignal(signal)
  }
  const onFatal = (kind: string) => (err: unknown) => {
    logger.fatal({ err }, kind)
    process.exit(EXIT.FAILURE)
  }
  const onUncaught = onFatal('uncaught exception')
  const onUnhandled = onFatal('unhandled promise rejection')
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUnhandled)

  try {
    try {
      await sledNode.start()
    } catch (err) {
      // A data dir held by another process is an operator mistake, not a crash: one line, no stack.
      const explained = explainOpenError(settings.data, err, 'stop it, or give this node its own --data directory')
      if (explained instanceof CliError)
        logger.fatal({ data: settings.data }, `node failed to start: ${explained.message}`)
      else logger.fatal({ err }, 'node failed to start')
      // A start that failed half-way (port in use) has the log open: close it cleanly.
      await sledNode.stop().catch(() => undefined)
      throw explained
    }
    const watch = new NodeWatch(
      {
        peers: () => sledNode.replicator.status(),
        status: () => sledNode.log.status(),
        ingest: () => sledNode.ingest.stats(),
      },
      logger,
    )
    if (signalled === null) {
      await write(io.stdout, JSON.stringify({ event: 'listening', url: sledNode.url, sled: sledNode.log.sled }) + '\n')
      logStart(logger, sledNode, settings, origins)
      if (sledNode.log.appendsHeld) {
        void sledNode.replicator.recovered.then((result) => {
          // Stopping also ends the wait; that is no recovery worth reporting.
          if (signalled !== null) return
          if (result === 'synced') logger.info('synced with every peer; appends open')
          else if (result === 'timeout') logger.info('recovery timeout passed; appends open')
        })
      }
      watch.start()
    }
    const signal = await firstSignal
    watch.stop()
    const started = Date.now()
    try {
      await sledNode.stop()
    } catch (err) {
      logger.error({ err }, 'shutdown failed')
      return EXIT.FAILURE
    }
    // Counted after the stop: the ingest drain appends what was still queued.
    const entries = sledNode.log.status().entries
    logger.info({ signal, ms: Date.now() - started, entries }, 'node stopped')
    return EXIT.OK
  } finally {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUnhandled)
  }
}

function logStart(logger: Logger, n: SledNode, s: NodeSettings, origins: Readonly<Record<SettingName, Origin>>): void {
  const from = Object.fromEntries(Object.entries(origins).filter(([, o]) => o !== 'default'))
  logger.info(
    {
      url: n.url,
      sled: n.log.sled,
      data: s.data,
      peers: s.peers,
      allow: s.allow?.length ?? 'any',
      token: s.token !== undefined,
      sync: s.sync,
      entries: n.log.status().entries,
      from,
    },
    'node started',
  )
  if (origins.token === 'flag') {
    logger.warn(
      'the token was given with --token, which other local users can read in the process list; prefer SLEDLOG_TOKEN or the config file',
    )
  }
  if (n.log.appendsHeld) {
    logger.info(
      { peers: s.peers.length, timeoutMs: s.recoveryTimeoutMs ?? 10_000 },
      'no entries of our own yet: appends wait until every peer has synced with us or the recovery timeout passes',
    )
  }
}
