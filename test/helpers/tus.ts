/** Small assertions shared by the protocol tests: error replies, stored bytes, "nothing was stored". */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { TUS, send, type Response } from './http.js'

/** What a tap subtest offers that these helpers use. */
export type Assert = Pick<Test, 'equal' | 'ok' | 'match' | 'same'>

/** The upload id is the last URL segment. */
export const idOf = (url: string): string => url.split('/').pop() as string

/** The bytes stored for an upload, or null when there is no file. */
export function stored (uploadDir: string, id: string): Buffer | null {
  const path = join(uploadDir, id)
  return existsSync(path) ? readFileSync(path) : null
}

/** The size of the stored file, or -1 when there is none. */
export function storedSize (uploadDir: string, id: string): number {
  const path = join(uploadDir, id)
  return existsSync(path) ? statSync(path).size : -1
}

export const head = async (url: string): Promise<Response> => send('HEAD', url, { headers: TUS })

/** A tus error reply: the status, Tus-Resumable, text/plain and a one-line, non-empty reason. */
export function assertError (t: Assert, res: Response, status: number, label = ''): void {
  const prefix = label === '' ? '' : `${label}: `
  t.equal(res.status, status, `${prefix}status ${status} (${res.text})`)
  t.equal(res.headers['tus-resumable'], '1.0.0', `${prefix}error reply carries Tus-Resumable`)
  t.match(String(res.headers['content-type']), /^text\/plain\b/, `${prefix}error reply is text/plain`)
  t.ok(res.text.length > 0, `${prefix}error reply has a reason`)
  t.ok(!/[\r\n]/.test(res.text), `${prefix}error reason is one line`)
}

/** Nothing exists: no row and no file in uploadDir. */
export async function assertNothingStored (t: Assert, app: FastifyInstance, uploadDir: string, label = ''): Promise<void> {
  const prefix = label === '' ? '' : `${label}: `
  t.same(await app.tus.list(), [], `${prefix}no upload row`)
  t.same(readdirSync(uploadDir), [], `${prefix}no file in uploadDir`)
}

/** HEAD offset and the bytes on disk are exactly `expected`. */
export async function assertStored (t: Assert, url: string, uploadDir: string, expected: Buffer, label = ''): Promise<void> {
  const prefix = label === '' ? '' : `${label}: `
  const res = await head(url)
  t.equal(res.status, 200, `${prefix}HEAD 200`)
  t.equal(res.headers['upload-offset'], String(expected.length), `${prefix}HEAD offset ${expected.length}`)
  const bytes = stored(uploadDir, idOf(url))
  t.equal(bytes?.length, expected.length, `${prefix}stored file has ${expected.length} bytes`)
  t.ok(bytes !== null && bytes.equals(expected), `${prefix}stored bytes equal the source`)
}

export const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 10 ms until it is true; throws after `timeout` ms. */
export async function waitFor (check: () => boolean | Promise<boolean>, timeout = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
