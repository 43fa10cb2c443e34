/** A raw HTTP client for tests: exact headers, exact bodies, no retries, no magic. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { createHash } from 'node:crypto'

export interface Response {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
}

export interface RequestOptions {
  headers?: Record<string, string | string[] | number>
  body?: Buffer | string
  /** Let the test write the body itself (e.g. in pieces, or abort mid-way). */
  stream?: (req: import('node:http').ClientRequest) => void
}

export function send (method: string, url: string, options: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (options.stream !== undefined) options.stream(req)
    else req.end(options.body)
  })
}

export const TUS = { 'Tus-Resumable': '1.0.0' }
export const OCTET = { 'Content-Type': 'application/offset+octet-stream' }

/** POST a new upload and answer its absolute URL. */
export async function create (endpoint: string, headers: Record<string, string> = { 'Upload-Length': '0' }, body?: Buffer): Promise<string> {
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, ...headers, ...(body === undefined ? {} : OCTET) }, body })
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`)
  return res.headers.location as string
}

export async function patch (url: string, offset: number, body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body })
}

export const encodeMetadata = (metadata: Record<string, string>): string =>
  Object.entries(metadata).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',')

export const digest = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('base64')
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

/** Deterministic pseudo-random bytes, so a failure is reproducible. */
export function bytes (size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
