/**
 * The `sledlog` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
 */
import { parseArgs } from 'node:util'
import { isSledId, type SledId } from '../core/ids.js'
import { isSledlogError } from '../errors.js'
import { SledNode } from '../node/node.js'
import { loadOrCreateIdentity, loadIdentity } from '../store/identity.js'

const USAGE = `sledlog <command> [options]

Commands:
  node     run a node            --data DIR [--host H] [--port P] [--peer URL]... [--token T] [--allow SLED]...
                                 [--sync] [--recovery-timeout MS]
  keygen   create a node key     --data DIR
  id       print the sled id     --data DIR

Every command accepts --help.`

/** Thrown for bad usage; exits with code 2. */
class UsageError extends Error {}

function fail(message: string): never {
  throw new UsageError(message)
}

async function runNode(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7400' },
      peer: { type: 'string', multiple: true, default: [] },
      token: { type: 'string' },
      allow: { type: 'string', multiple: true, default: [] },
      sync: { type: 'boolean', default: false },
      'recovery-timeout': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (values.data === undefined) fail('node needs --data DIR')
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port} is not a port number`)
  for (const p of values.peer) if (!/^wss?:\/\/[^/]+/.test(p)) fail(`--peer ${p} must be a ws:// or wss:// URL`)
  for (const a of values.allow) if (!isSledId(a)) fail(`--allow ${a} is not a sled id (64 lowercase hex)`)
  const recovery = values['recovery-timeout'] === undefined ? undefined : Number(values['recovery-timeout'])
  if (recovery !== undefined && !(Number.isInteger(recovery) && recovery >= 0)) fail('--recovery-timeout must be ms >= 0')
  const node = new SledNode({
    dataDir: values.data,
    host: values.host,
    port,
    peers: values.peer,
    ...(values.allow.length > 0 ? { allow: values.allow as SledId[] } : {}),
    ...(values.token === undefined ? {} : { token: values.token }),
    sync: values.sync,
    ...(recovery === undefined ? {} : { recoveryTimeoutMs: recovery }),
  })
  await node.start()
  process.stdout.write(JSON.stringify({ event: 'listening', url: node.url, sled: node.log.sled }) + '\n')
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    process.stderr.write(JSON.stringify({ event: 'stopping', signal }) + '\n')
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

async function runKey(argv: string[], create: boolean): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { data: { type: 'string' }, help: { type: 'boolean', default: false } } })
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (values.data === undefined) fail(`${create ? 'keygen' : 'id'} needs --data DIR`)
  const keys = create ? await loadOrCreateIdentity(values.data) : await loadIdentity(values.data)
  if (keys === undefined) fail(`no key in ${values.data} (run: sledlog keygen --data ${values.data})`)
  console.log(keys.sled)
}

/** Runs the CLI with `argv` (without node and script). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'node':
        await runNode(rest)
        return 0
      case 'keygen':
        await runKey(rest, true)
        return 0
      case 'id':
        await runKey(rest, false)
        return 0
      case undefined:
      case '--help':
      case 'help':
        console.log(USAGE)
        return command === undefined ? 2 : 0
      default:
        fail(`unknown command ${command}`)
    }
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`sledlog: ${err.message}\n\n${USAGE}`)
      return 2
    }
    if (isSledlogError(err)) {
      console.error(`sledlog: ${err.code}: ${err.message}`)
      return 1
    }
    console.error(err)
    return 1
  }
}
