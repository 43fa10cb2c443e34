/** Reading and writing tus headers, client side. */
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { TusHttpError, TusProtocolError } from './errors.js'
import { headerValue, type HttpRequest, type HttpResponse } from './http.js'
import type { ClientChecksumAlgorithm } from './options.js'

export const OCTET_STREAM = 'application/offset+octet-stream'

/** What an OPTIONS request tells about a server. */
export interface TusServerInfo {
  /** Tus-Version as sent, e.g. '1.0.0' or '1.0.0,0.2.2'. */
  version: string
  /** Tus-Version split into the versions, preferred first. */
  versions: string[]
  /** Tus-Extension: e.g. ['creation', 'checksum', ...]. */
  extensions: string[]
  /** Tus-Max-Size, or null when the server sets no limit. */
  maxSize: number | null
  /** Tus-Checksum-Algorithm, lower-cased. */
  checksumAlgorithms: string[]
}

/** What a HEAD request tells about an upload. */
export interface TusUploadInfo {
  url: string
  /** Upload-Offset; null for a final upload whose parts are not all finished. */
  offset: number | null
  /** Upload-Length, or null while deferred (or unknown for an unfinished final upload). */
  length: number | null
  /** Decoded Upload-Metadata; a key sent without value maps to ''. */
  metadata: Record<string, string>
  /** Upload-Expires, or null. */
  expires: Date | null
  /** 'partial', 'final' or null, from Upload-Concat. */
  concat: 'partial' | 'final' | null
  /** offset === length. */
  complete: boolean
}

const list = (value: string | undefined): string[] =>
  (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')

export function parseServerInfo (headers: IncomingHttpHeaders): TusServerInfo {
  const version = headerValue(headers, 'tus-version') ?? ''
  const maxSize = headerValue(headers, 'tus-max-size')
  return {
    version,
    versions: list(version),
    extensions: list(headerValue(headers, 'tus-extension')),
    maxSize: maxSize === undefined ? null : parseCount(maxSize, 'Tus-Max-Size'),
    checksumAlgorithms: list(headerValue(headers, 'tus-checksum-algorithm')).map((a) => a.toLowerCase())
  }
}

export function parseUploadInfo (url: string, headers: IncomingHttpHeaders): TusUploadInfo {
  const rawOffset = headerValue(headers, 'upload-offset')
  const rawLength = headerValue(headers, 'upload-length')
  const concat = headerValue(headers, 'upload-concat')?.trim() ?? ''
  const isFinal = concat.startsWith('final')
  if (rawOffset === undefined && !isFinal) throw new TusProtocolError(`HEAD ${url} answered without Upload-Offset`)
  const offset = rawOffset === undefined ? null : parseCount(rawOffset, 'Upload-Offset')
  const length = rawLength === undefined ? null : parseCount(rawLength, 'Upload-Length')
  const expires = headerValue(headers, 'upload-expires')
  const expiresAt = expires === undefined ? null : new Date(expires)
  return {
    url,
    offset,
    length,
    metadata: decodeMetadata(headerValue(headers, 'upload-metadata')),
    expires: expiresAt === null || Number.isNaN(expiresAt.getTime()) ? null : expiresAt,
    concat: concat === 'partial' ? 'partial' : isFinal ? 'final' : null,
    complete: offset !== null && length !== null && offset === length
  }
}

/** A non-negative integer header; anything else means the server is not speaking tus. */
export function parseCount (raw: string, name: string): number {
  const value = raw.trim()
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new TusProtocolError(`${name} "${raw.slice(0, 40)}" is not a non-negative integer`)
  return n
}

export function encodeMetadata (metadata: Record<string, string>): string {
  return Object.entries(metadata).map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`).join(',')
}

export function decodeMetadata (raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of (raw ?? '').split(',')) {
    const [key, value] = pair.trim().split(' ')
    if (key === undefined || key === '') continue
    out[key] = value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8')
  }
  return out
}

/** The Upload-Checksum header of one chunk. */
export function checksumHeader (algorithm: ClientChecksumAlgorithm, chunk: Buffer): string {
  return `${algorithm} ${createHash(algorithm).update(chunk).digest('base64')}`
}

/** Location may be relative; the upload URL is always made absolute against the request's URL. */
export function uploadUrlFrom (response: HttpResponse, requestUrl: string): string {
  const location = headerValue(response.headers, 'location')
  if (location === undefined || location.trim() === '') throw new TusProtocolError(`POST ${requestUrl} answered ${response.statusCode} without a Location`)
  try {
    return new URL(location.trim(), requestUrl).href
  } catch {
    throw new TusProtocolError(`POST ${requestUrl} answered an invalid Location "${location.slice(0, 200)}"`)
  }
}

/** Throws TusHttpError unless the status is one of `expected`. */
export function expectStatus (response: HttpResponse, request: HttpRequest, ...expected: number[]): void {
  if (expected.includes(response.statusCode)) return
  throw new TusHttpError({ statusCode: response.statusCode, body: response.body, method: request.method, url: request.url, headers: response.headers })
}
