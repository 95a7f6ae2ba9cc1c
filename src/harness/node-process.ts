/**
 * The node process of a harness cluster: `sledlog node` with one more knob, the ingest bus
 * capacity (`--ingest-capacity N`). The ingest checks need a bus small enough to overflow under
 * the workload (so gap sentinels are written), and `sledlog node` does not expose the bus size.
 * Everything else is the CLI's: the same flags and config resolution, the same node, the same
 * stdout contract (one `{"event":"listening"}` line) and the same graceful stop on SIGTERM.
 */
import { fileURLToPath } from 'node:url'
import { NODE_FLAGS } from '../cli/commands/node.js'
import { intFlag, parseFlags } from '../cli/args.js'
import { EXIT } from '../cli/cli-error.js'
import { processIo, write, type CliIo } from '../cli/io.js'
import { createLogger } from '../cli/logger.js'
import { loadNodeSettings } from '../config/load.js'
import { SledNode } from '../node/node.js'
import type { NodeCommand } from './cluster.js'

/** `sledlog node`'s flags plus `--ingest-capacity`. */
export const HARNESS_NODE_FLAGS = { ...NODE_FLAGS, 'ingest-capacity': { type: 'string' } } as const

/**
 * Runs a node until SIGTERM or SIGINT; resolves with the exit code. `argv` is what the cluster
 * passes to `sledlog` (`node --data …`), optionally with `--ingest-capacity N`.
 */
export async function runHarnessNode(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const args = argv[0] === 'node' ? argv.slice(1) : argv
  const { 'ingest-capacity': capacityFlag, ...flags } = parseFlags(args, HARNESS_NODE_FLAGS)
  const capacity = intFlag(capacityFlag, 'ingest-capacity', 1)
  const { settings } = await loadNodeSettings(flags, io.env)
  const logger = createLogger(settings.logLevel)
  const node = new SledNode({
    dataDir: settings.data,
    host: settings.host,
    port: settings.port,
    peers: settings.peers,
    ...(settings.allow === undefined ? {} : { allow: settings.allow }),
    ...(settings.token === undefined ? {} : { token: settings.token }),
    sync: settings.sync,
    ...(settings.recoveryTimeoutMs === undefined ? {} : { recoveryTimeoutMs: settings.recoveryTimeoutMs }),
    ...(capacity === undefined ? {} : { ingest: { capacity } }),
  })
  let onSignal: (s: NodeJS.Signals) => void = () => undefined
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve))
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    // As the CLI: a second signal exits at once.
    if (stopping) process.exit(EXIT.FAILURE)
    stopping = true
    onSignal(signal)
  }
  const fatal = (err: unknown): void => {
    logger.fatal({ err }, 'uncaught error')
    process.exit(EXIT.FAILURE)
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
  process.on('uncaughtException', fatal)
  process.on('unhandledRejection', fatal)
  try {
    await node.start()
    await write(io.stdout, JSON.stringify({ event: 'listening', url: node.url, sled: node.log.sled }) + '\n')
    logger.info({ url: node.url, sled: node.log.sled, ingestCapacity: capacity ?? 'default', appendsHeld: node.log.appendsHeld }, 'harness node started')
    const signal = await signalled
    await node.stop()
    logger.info({ signal }, 'node stopped')
    return EXIT.OK
  } catch (err) {
    logger.fatal({ err }, 'node failed')
    await node.stop().catch(() => undefined)
    return EXIT.FAILURE
  } finally {
    process.off('SIGTERM', handler)
    process.off('SIGINT', handler)
  }
}

/**
 * The command that runs a harness node process with an ingest bus of `ingestCapacity` events:
 * `node --import tsx src/harness/node-main.ts …` from the sources (where tsx resolves), or the
 * compiled `node-main.js` with plain node from a build, as {@link nodeCommand} does for the CLI.
 */
export function harnessNodeCommand(ingestCapacity: number): (cliArgs: readonly string[]) => NodeCommand {
  const fromSources = import.meta.url.endsWith('.ts')
  const main = fileURLToPath(new URL(fromSources ? './node-main.ts' : './node-main.js', import.meta.url))
  const root = fileURLToPath(new URL(fromSources ? '../../' : '../../../', import.meta.url))
  return (cliArgs) => {
    const args = [...cliArgs, '--ingest-capacity', String(ingestCapacity)]
    return { command: process.execPath, args: fromSources ? ['--import', 'tsx', main, ...args] : [main, ...args], cwd: root }
  }
}
