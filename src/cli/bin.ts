#!/usr/bin/env node
/**
 * Entry point of the `sledlog` executable.
 */
import { main } from './main.js'

// `sledlog read --all | head` closes the pipe early: that is the reader saying "enough", not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()))
}

// Every command resolves once its work is done (`node` once it has shut down after a signal);
// exiting here ends whatever keep-alive sockets or timers remain, after the output is out.
const code = await main(process.argv.slice(2))
await Promise.all([flushed(process.stdout), flushed(process.stderr)])
process.exit(code)
