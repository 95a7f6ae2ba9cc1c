/**
 * The slice of `hypercore` (npm, untyped JavaScript) that the "compare" benchmark group uses.
 */
declare module 'hypercore' {
  import type { Duplex } from 'node:stream'

  interface HypercoreOptions {
    valueEncoding?: 'json' | 'utf-8' | 'binary'
    createIfMissing?: boolean
  }

  interface DownloadRange {
    done(): Promise<void>
    destroy(): void
  }

  class Hypercore {
    constructor(storage: string, options?: HypercoreOptions)
    constructor(storage: string, key: Buffer | null, options?: HypercoreOptions)
    ready(): Promise<void>
    close(): Promise<void>
    append(block: string | Buffer | ReadonlyArray<string | Buffer>): Promise<{ length: number; byteLength: number }>
    get(index: number, options?: { wait?: boolean; timeout?: number }): Promise<string | Buffer | null>
    update(options?: { wait?: boolean }): Promise<boolean>
    download(range?: { start?: number; end?: number; linear?: boolean }): DownloadRange
    replicate(isInitiator: boolean, opts?: Record<string, unknown>): Duplex
    on(event: 'append' | 'download' | 'close', listener: (...args: unknown[]) => void): this
    readonly key: Buffer
    readonly length: number
    readonly contiguousLength: number
    readonly byteLength: number
  }

  export default Hypercore
}
