/** Shared pieces of the client tests: source files, stored bytes, request counters on the test server. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { tempDir } from './server.js'
import { bytes } from './http.js'
import { idOf, stored } from './tus.js'

interface Teardown { teardown(fn: () => unknown): void }

/** Writes `size` deterministic bytes to a temp file; answers its path and content. */
export function sourceFile (t: Teardown, size: number, seed = 1, name = 'source.bin'): { path: string; content: Buffer } {
  const content = bytes(size, seed)
  const path = join(tempDir(t, 'fastify-tus-client-'), name)
  writeFileSync(path, content)
  return { path, content }
}

/** A stream of unknown length that hands out `content` in pieces of `piece` bytes. */
export function streamOf (content: Buffer, piece = 10_000): Readable {
  let at = 0
  return new Readable({
    read () {
      if (at >= content.length) { this.push(null); return }
      this.push(content.subarray(at, at + piece))
      at += piece
    }
  })
}

/** The bytes the test server stored for the upload at `url`. */
export const storedAt = (uploadDir: string, url: string): Buffer | null => stored(uploadDir, idOf(url))

export interface RequestLog {
  /** Every request seen, as 'METHOD path'. */
  requests: string[]
  /** Sum of the declared body sizes of PATCH requests. */
  patchBytes: number
  /** Sum of the declared body sizes of POST requests. */
  postBytes: number
  count (method: string): number
}

/** Records every request the server receives (register it in startServer's setup, before the plugin). */
export function logRequests (app: FastifyInstance): RequestLog {
  const log: RequestLog = {
    requests: [],
    patchBytes: 0,
    postBytes: 0,
    count: (method) => log.requests.filter((r) => r.startsWith(method + ' ')).length
  }
  app.addHook('onRequest', async (request) => {
    log.requests.push(`${request.method} ${request.url}`)
    const length = Number(request.headers['content-length'] ?? 0)
    if (request.method === 'PATCH') log.patchBytes += length
    if (request.method === 'POST') log.postBytes += length
  })
  return log
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function failureOf (promise: Promise<unknown>): Promise<Error & { statusCode?: number; code?: string }> {
  const outcome = await promise.then(() => undefined, (err: unknown) => err)
  if (outcome === undefined) throw new Error('expected a rejection, but the promise resolved')
  return outcome as Error & { statusCode?: number }
}
