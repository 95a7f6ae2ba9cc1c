/**
 * A node process started from a JSON NodeConfig (argv[2]) rather than CLI flags: for end-to-end
 * tests of settings the CLI does not expose (or not yet): insecure, TLS, allowed hosts, CORS
 * origins, stream and server limits. Same contract as `sledlog node`: one `listening` line on
 * stdout, JSON logs on stderr, SIGTERM stops it cleanly (exit 0), a failed start exits 2 with
 * the error on stderr.
 */
import { createLogger } from '../../src/cli/logger.js'
import { isSledlogError } from '../../src/errors.js'
import { SledNode, type NodeConfig } from '../../src/node/node.js'

const config = JSON.parse(process.argv[2] as string) as NodeConfig
const logger = createLogger('info')
const node = new SledNode({ ...config, logger })
try {
  await node.start()
} catch (err) {
  logger.fatal({ code: isSledlogError(err) ? err.code : undefined }, `node failed to start: ${(err as Error).message}`)
  await node.stop().catch(() => undefined)
  process.exit(2)
}
process.stdout.write(`${JSON.stringify({ event: 'listening', url: node.url, sled: node.log.sled })}\n`)
process.once('SIGTERM', () => {
  void node.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
