/**
 * Parsing and validation of tus request headers. Every function either returns
 * a clean value or throws a TusError with a 4xx status and a one-line reason.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { ChecksumAlgorithm, UploadMetadata } from '../../types/index.js'
import { TusError } from './errors.js'

export const TUS_VERSION = '1.0.0'
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream'

/**
 * Upload ids: url-safe characters only, so an id can never name a path outside
 * uploadDir. At most 100 characters, Fastify's default maxParamLength.
 */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/
export const isValidId = (id: string): boolean => ID_PATTERN.test(id)

/** Headers that carry one value; Node would join repeats with ", ", so they are caught on the raw list. */
const SINGLE_VALUE_HEADERS = new Set([
  'upload-length', 'upload-defer-length', 'upload-offset', 'upload-metadata',
  'upload-checksum', 'upload-concat', 'x-http-method-override', 'content-type'
])

/** The first single-value header sent more than once, if any. */
export function repeatedHeader (rawHeaders: string[]): string | undefined {
  let seen: Set<string> | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase()
    if (!SINGLE_VALUE_HEADERS.has(name)) continue
    seen ??= new Set()
    if (seen.has(name)) return name
    seen.add(name)
  }
  return undefined
}

/** Does the request carry a body (announced by Content-Length or chunked encoding)? */
export function hasBody (headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** One header value; an array (a repeat Node did not join) is rejected. */
export function single (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  if (Array.isArray(value)) throw new TusError(400, `${name} must be sent once`)
  return value
}

const DIGITS = /^\d{1,16}$/
/** A non-negative integer header no larger than 2^53 - 1. */
export function parseSize (headers: IncomingHttpHeaders, name: string): number | undefined {
  const raw = single(headers, name)
  if (raw === undefined) return undefined
  const value = raw.trim()
  if (!DIGITS.test(value)) throw new TusError(400, `${name} must be a non-negative integer`)
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new TusError(400, `${name} is too large`)
  return n
}

const METADATA_KEY = /^[^\s,]+$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** Strict: invalid UTF-8 throws instead of turning into U+FFFD; a leading BOM is kept, not eaten. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Upload-Metadata: comma-separated `key base64value` pairs, value optional, keys unique, values UTF-8 text. */
export function parseMetadata (raw: string | undefined, maxSize: number): UploadMetadata {
  const metadata: UploadMetadata = Object.create(null)
  if (raw === undefined || raw.trim() === '') return metadata
  if (Buffer.byteLength(raw) > maxSize) throw new TusError(400, `Upload-Metadata is larger than ${maxSize} bytes`)
  for (const pair of raw.split(',')) {
    const parts = pair.trim().split(' ')
    const key = parts[0] ?? ''
    if (parts.length > 2 || !METADATA_KEY.test(key)) throw new TusError(400, 'Upload-Metadata is malformed')
    if (Object.prototype.hasOwnProperty.call(metadata, key)) throw new TusError(400, `Upload-Metadata repeats the key ${key}`)
    const encoded = parts[1]
    if (encoded === undefined || encoded === '') {
      metadata[key] = null
      continue
    }
    if (!BASE64.test(encoded)) throw new TusError(400, `Upload-Metadata value of ${key} is not base64`)
    // Values are kept as strings (hooks, app.tus.get, the download's filename):
    // bytes that are not UTF-8 would come back changed, so they are refused.
    try {
      metadata[key] = UTF8.decode(Buffer.from(encoded, 'base64'))
    } catch {
      throw new TusError(400, `Upload-Metadata value of ${key} is not UTF-8 text`)
    }
  }
  return metadata
}

export function serializeMetadata (metadata: UploadMetadata): string {
  return Object.entries(metadata)
    .map(([key, value]) => value === null ? key : `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',')
}

export type ConcatHeader =
  | { kind: 'partial' }
  | { kind: 'final'; urls: string[] }

/** Upload-Concat: `partial`, or `final;` followed by space-separated upload URLs. */
export function parseConcat (headers: IncomingHttpHeaders): ConcatHeader | undefined {
  const raw = single(headers, 'upload-concat')
  if (raw === undefined) return undefined
  const value = raw.trim()
  if (value === 'partial') return { kind: 'partial' }
  if (value.startsWith('final;')) {
    const urls = value.slice('final;'.length).trim().split(/\s+/).filter(Boolean)
    if (urls.length === 0) throw new TusError(400, 'Upload-Concat final lists no partial uploads')
    if (urls.length > 1000) throw new TusError(400, 'Upload-Concat final lists more than 1000 partial uploads')
    return { kind: 'final', urls }
  }
  throw new TusError(400, 'Upload-Concat must be "partial" or "final;<urls>"')
}

export const ALL_CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['sha1', 'sha256', 'sha512', 'md5']
const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 }

export interface ChecksumHeader { algorithm: ChecksumAlgorithm; digest: Buffer }

/** Upload-Checksum: `<algorithm> <base64 digest>`; the algorithm must be one we advertise. */
export function parseChecksum (headers: IncomingHttpHeaders, accepted: readonly ChecksumAlgorithm[]): ChecksumHeader | undefined {
  const raw = single(headers, 'upload-checksum')
  if (raw === undefined) return undefined
  const [name = '', encoded = '', ...rest] = raw.trim().split(' ')
  const algorithm = name.toLowerCase() as ChecksumAlgorithm
  if (!accepted.includes(algorithm)) throw new TusError(400, `Upload-Checksum algorithm "${name.slice(0, 32)}" is not supported`)
  if (rest.length > 0 || !BASE64.test(encoded)) throw new TusError(400, 'Upload-Checksum digest is not base64')
  const digest = Buffer.from(encoded, 'base64')
  if (digest.length !== DIGEST_BYTES[algorithm]) throw new TusError(400, `Upload-Checksum digest has the wrong length for ${algorithm}`)
  return { algorithm, digest }
}

/** The media type of Content-Type without parameters, lower-cased. */
export function mediaType (headers: IncomingHttpHeaders): string | undefined {
  const raw = headers['content-type']
  if (raw === undefined) return undefined
  return raw.split(';')[0]!.trim().toLowerCase()
}
