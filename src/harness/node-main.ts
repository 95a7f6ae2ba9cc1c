/**
 * Entry point of a harness node process (see node-process.ts): runs the node, then exits with
 * its code once stdout and stderr are flushed.
 */
import { runHarnessNode } from './node-process.js'

const code = await runHarnessNode(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`harness node: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return 1
})
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
process.exit(code)
