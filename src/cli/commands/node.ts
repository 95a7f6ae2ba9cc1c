/**
 * `sledlog node`: runs a node until SIGTERM or SIGINT, then shuts it down gracefully.
 *
 * Contract with whoever starts it (tests, the harness, orchestrators): once the node listens it
 * prints exactly one JSON line `{"event":"listening","url","sled"}` on stdout; everything else
 * goes to stderr as structured logs. On the first signal it stops taking work, drains the ingest
 * writer into the log, closes peers and the HTTP server, closes the log, and exits 0. Signals
 * within SIGNAL_REPEAT_WINDOW_MS of the first are the same request; a later one exits at once
 * with 1.
 */
import { loadNodeSettings } from '../../config/load.js'
import { redactUrls } from '../../config/redact.js'
import type { NodeSettings, Origin, SettingName } from '../../config/settings.js'
import { settingsWarnings } from '../../config/warnings.js'
import { SledNode, type NodeConfig } from '../../node/node.js'
import { parseFlags } from '../args.js'
import { CliError, EXIT } from '../cli-error.js'
import { explainOpenError } from '../data-dir.js'
import { help, type Command } from '../command.js'
import { write, type CliIo } from '../io.js'
import { createLogger, type Logger } from '../logger.js'
import { NodeWatch } from '../node-watch.js'
import { SIGNAL_REPEAT_WINDOW_MS, StopSignals } from '../signals.js'

/** The flags of `sledlog node` (exported for checks of deployment files). */
export const NODE_FLAGS = {
  config: { type: 'string' },
  data: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  peer: { type: 'string', multiple: true },
  token: { type: 'string' },
  allow: { type: 'string', multiple: true },
  'admin-key': { type: 'string', multiple: true },
  sync: { type: 'boolean' },
  'min-acks': { type: 'string' },
  'ack-timeout': { type: 'string' },
  'recovery-timeout': { type: 'string' },
  'recovery-quorum': { type: 'string' },
  'recovery-mode': { type: 'string' },
  'ingest-capacity': { type: 'string' },
  'log-level': { type: 'string' },
  insecure: { type: 'boolean' },
  'api-tokens': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'peer-ca': { type: 'string' },
  'peer-pin': { type: 'string', multiple: true },
  'allowed-host': { type: 'string', multiple: true },
  'cors-origin': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const

const REPEAT_S = SIGNAL_REPEAT_WINDOW_MS / 1000

/** `sledlog node`. */
export const node: Command = {
  name: 'node',
  help: `Usage: sledlog node --data DIR [options]

Runs a node: the HTTP API and the websocket sync endpoint on one port, replication with the
configured peers. Prints one JSON line {"event":"listening","url","sled"} on stdout when ready;
logs go to stderr as JSON lines. SIGTERM or SIGINT shuts down gracefully (queued ingest events
are written, the log is closed) and exits 0. Signals within ${REPEAT_S} s of the first are
the same request (tools like timeout(1) send two); a later signal exits at once with 1.

Options (environment variable and config file key in brackets):
  --data DIR               data directory: key and database        [SLEDLOG_DATA, data]
  --host HOST              address to listen on (127.0.0.1)        [SLEDLOG_HOST, host]
  --port PORT              HTTP and sync port, 0 = any free (7400) [SLEDLOG_PORT, port]
  --peer URL               peer to dial, ws://host:port or wss://host:port; repeatable
                                                   [SLEDLOG_PEERS comma-separated, peers]
  --token SECRET           shared secret every peer must prove     [SLEDLOG_TOKEN, token]
                           (prefer the variable: flags show in the process list)
  --allow SLED             sled id allowed to connect; repeatable (default: any peer that
                           authenticates)            [SLEDLOG_ALLOW comma-separated, allow]
                           A sled also admits the signed successors of allowed sleds.
  --admin-key KEY          admin public key (64 hex) whose revocations retire a sled's key;
                           repeatable; every node of a cluster must list the same ones
                                                   [SLEDLOG_ADMIN_KEYS comma-separated, adminKeys]
  --sync                   fsync every commit (survives power loss) [SLEDLOG_SYNC, sync]
  --min-acks N             answer a write only once N configured peers prove they durably
                           hold it, unless it asks otherwise (acks=N); 0 = durable here (0)
                                                   [SLEDLOG_MIN_ACKS, minAcks]
  --ack-timeout MS         how long a write waits for its acknowledgements (10000)
                                                   [SLEDLOG_ACK_TIMEOUT, ackTimeoutMs]
  --recovery-quorum N      a node whose store is new but whose key is not (a lost disk)
                           refuses writes until N configured peers (--peer, --allow) signed
                           how many of its entries they hold and it holds as many; default
                           every --peer (every --allow when none). Lower is faster to
                           recover but can re-sign entries only the others hold (README)
                                                   [SLEDLOG_RECOVERY_QUORUM, recoveryQuorum]
  --recovery-mode MODE     what a proven recovery leads to: succession (default) moves the node
                           to a successor key, so no seq is signed twice; resume appends on
                           under the old key, signing again the seqs of entries no peer held
                                                   [SLEDLOG_RECOVERY_MODE, recoveryMode]
  --recovery-timeout MS    warn (log, status, metrics) when a recovery has waited this long,
                           then ever more rarely; it never ends one (10000)
                                                   [SLEDLOG_RECOVERY_TIMEOUT, recoveryTimeoutMs]
  --ingest-capacity N      ingest bus size in events; a burst past it is dropped and recorded
                           as a gap sentinel (10000) [SLEDLOG_INGEST_CAPACITY, ingestCapacity]
  --log-level LEVEL        fatal, error, warn, info, debug, trace or silent (info)
                                                   [SLEDLOG_LOG_LEVEL, logLevel]
  --config FILE            JSON config file with the keys above    [SLEDLOG_CONFIG]

Security (docs/SECURITY.md):
  --api-tokens FILE        API tokens (sledlog token); with one, every request but /healthz
                           needs a token (default DIR/api-tokens.json)
                                                   [SLEDLOG_API_TOKENS_FILE, apiTokensFile]
  --tls-cert FILE          PEM certificate chain: serve HTTPS and WSS  [SLEDLOG_TLS_CERT, tlsCert]
  --tls-key FILE           PEM private key of --tls-cert (both or neither) [SLEDLOG_TLS_KEY, tlsKey]
  --peer-ca FILE           PEM CA bundle wss:// peers' certificates must chain to, instead of
                           the system roots                  [SLEDLOG_PEER_CA, peerCa]
  --peer-pin SHA256        SHA-256 fingerprint a wss:// peer's certificate must have, hex with
                           or without colons; repeatable
                                                   [SLEDLOG_PEER_PINS comma-separated, peerPins]
  --allowed-host HOST      Host header the API answers besides loopback names and IP
                           addresses (DNS rebinding defence); repeatable
                                                   [SLEDLOG_ALLOWED_HOSTS comma-separated, allowedHosts]
  --cors-origin ORIGIN     browser origin (scheme://host[:port]) allowed to call the API;
                           repeatable (default none)
                                                   [SLEDLOG_CORS_ORIGINS comma-separated, corsOrigins]
  --insecure               turn off the start-up safety check: a node listening off loopback
                           refuses to start without API tokens and without a sync allow-list
                           or token; with --insecure it starts anyway (warned in its log and
                           shown in status)                  [SLEDLOG_INSECURE, insecure]

Precedence: flags, then environment, then config file, then defaults. A relative path in a
config file is relative to the file. Every problem is reported at once (CONFIG_INVALID).

Exit codes: 0 stopped by a signal after a clean shutdown; 1 failed to start (KEY_FILE_PERMISSIONS,
port in use, disk full or read-only…), failed shutdown, or a forced stop by a later signal;
2 bad flags or configuration.`,
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
  // The API logs unexpected handler failures (500 INTERNAL) through the logger.
  const sledNode = new SledNode({
    ...nodeConfigOf(settings),
    logger,
    // For supervisors (the harness, scripts): the sled this node appends as has changed.
    onSuccession: (r) => {
      const line = { event: 'succession', sled: r.successor, predecessor: r.predecessor, lastSeq: r.lastSeq }
      void write(io.stdout, JSON.stringify(line) + '\n').catch(() => undefined)
    },
  })

  // Handlers go in before start: a signal during start must still end in a clean stop.
  let signalled: NodeJS.Signals | null = null
  let onFirstSignal: (s: NodeJS.Signals) => void = () => undefined
  const firstSignal = new Promise<NodeJS.Signals>((resolve) => (onFirstSignal = resolve))
  const signals = new StopSignals()
  const onSignal = (signal: NodeJS.Signals): void => {
    const action = signals.receive(Date.now())
    if (action === 'repeat') {
      logger.info({ signal, windowMs: SIGNAL_REPEAT_WINDOW_MS }, 'repeated signal: already shutting down')
      return
    }
    if (action === 'force') {
      logger.warn(
        { signal },
        'another signal: exiting now; ingest events not yet written are lost (recorded as a gap on restart)',
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
      // A data dir held by another process, a full or read-only disk: operator matters, not
      // crashes. One line, no stack.
      const advice = 'stop it, or give this node its own --data directory'
      const explained = explainOpenError(settings.data, err, { advice, role: 'node' })
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
      // A recovery logs its own decisions (start, each peer's answer, end, warnings) at warn.
      logStart(logger, sledNode, settings, origins)
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

/** The node's configuration from resolved settings (the logger is added by the caller). */
export function nodeConfigOf(s: NodeSettings): NodeConfig {
  return {
    dataDir: s.data,
    host: s.host,
    port: s.port,
    peers: s.peers,
    ...(s.allow === undefined ? {} : { allow: s.allow }),
    ...(s.adminKeys === undefined ? {} : { adminKeys: s.adminKeys }),
    ...(s.token === undefined ? {} : { token: s.token }),
    sync: s.sync,
    minAcks: s.minAcks,
    ...(s.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: s.ackTimeoutMs }),
    ...(s.recoveryTimeoutMs === undefined ? {} : { recoveryTimeoutMs: s.recoveryTimeoutMs }),
    ...(s.recoveryQuorum === undefined ? {} : { recoveryQuorum: s.recoveryQuorum }),
    recoveryMode: s.recoveryMode,
    ...(s.ingestCapacity === undefined ? {} : { ingest: { capacity: s.ingestCapacity } }),
    insecure: s.insecure,
    ...(s.apiTokensFile === undefined ? {} : { apiTokensFile: s.apiTokensFile }),
    ...(s.tlsCert === undefined || s.tlsKey === undefined ? {} : { tls: { certFile: s.tlsCert, keyFile: s.tlsKey } }),
    ...(s.peerCa === undefined && s.peerPins === undefined
      ? {}
      : {
          peerTls: {
            ...(s.peerCa === undefined ? {} : { caFile: s.peerCa }),
            ...(s.peerPins === undefined ? {} : { pins: s.peerPins }),
          },
        }),
    ...(s.allowedHosts === undefined ? {} : { allowedHosts: s.allowedHosts }),
    ...(s.corsOrigins === undefined ? {} : { corsOrigins: s.corsOrigins }),
  }
}

function logStart(logger: Logger, n: SledNode, s: NodeSettings, origins: Readonly<Record<SettingName, Origin>>): void {
  const from = Object.fromEntries(Object.entries(origins).filter(([, o]) => o !== 'default'))
  logger.info(
    {
      url: redactUrls(n.url),
      sled: n.log.sled,
      data: s.data,
      peers: s.peers.map(redactUrls),
      allow: s.allow?.length ?? 'any',
      token: s.token !== undefined,
      sync: s.sync,
      minAcks: s.minAcks,
      tls: s.tlsCert !== undefined,
      insecure: s.insecure,
      entries: n.log.status().entries,
      from,
    },
    'node started',
  )
  for (const warning of settingsWarnings(s, origins)) logger.warn(warning)
  const succession = n.log.status().succession
  if (succession.own !== null) {
    logger.warn(
      { sled: n.log.sled, retiredFrom: succession.own },
      "this node's key is retired (a succession or revocation it holds): appends from that seq are refused " +
        '(SLED_RETIRED); stop the node and run sledlog rotate-key --data DIR',
    )
  }
}
