/**
 * The streams and environment a command works with. Commands never touch `process` for I/O, so
 * tests can run them in-process with captured output.
 */

/** An output stream (stdout or stderr). */
export interface OutStream {
  write(chunk: string): boolean
  once(event: 'drain', listener: () => void): unknown
  /** True when a person is watching: progress bars and colours only then. */
  readonly isTTY?: boolean
  /** Terminal width, when a TTY. */
  readonly columns?: number
}

/** An input stream (stdin). */
export interface InStream extends AsyncIterable<Buffer | string> {
  readonly isTTY?: boolean
}

/** What a command can use. */
export interface CliIo {
  readonly stdout: OutStream
  readonly stderr: OutStream
  readonly stdin: InStream
  readonly env: Readonly<Record<string, string | undefined>>
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }
}

/**
 * Writes `text`, waiting when the stream's buffer is full, so printing a million entries into a
 * slow pipe does not buffer them all in memory.
 */
export async function write(stream: OutStream, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve))
}

/** A notice line on stderr, `sledlog <command>: <text>`, for options like `onNotice`. */
export function notice(io: CliIo, command: string): (text: string) => void {
  return (text) => {
    io.stderr.write(`sledlog ${command}: ${text}\n`)
  }
}
