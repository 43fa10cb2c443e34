/**
 * The IETF draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload),
 * client side: what goes on the wire and how answers are read. The draft's
 * fields are RFC 9651 structured fields; a value that does not parse is
 * treated as absent, as the draft says.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { TusHttpError, TusProtocolError } from './errors.js'
import { headerValue } from './http.js'
import type { DraftInteropVersion } from './options.js'
import { encodeMetadata, type TusUploadInfo } from './protocol.js'

/** The media type of an append (PATCH) body. */
export const PARTIAL_UPLOAD = 'application/partial-upload'
export const OCTET_STREAM_TYPE = 'application/octet-stream'
export const INTEROP_HEADER = 'Upload-Draft-Interop-Version'

/** Every 2xx: the draft fixes no status for creation, append, offset retrieval or cancellation. */
export const SUCCESS = Object.freeze(Array.from({ length: 100 }, (_, i) => 200 + i))

/** Parameters after an item (`;a=1`), allowed and ignored. */
const PARAMS = '(?:;[a-z*][a-z0-9_.*-]*(?:=[^;]*)?)*'
const SF_INTEGER = new RegExp(`^[ ]*(-?\\d{1,15})${PARAMS}[ ]*$`)
const SF_BOOLEAN = new RegExp(`^[ ]*\\?([01])${PARAMS}[ ]*$`)

/** A non-negative sf-integer, or undefined. */
export function parseSfInteger (raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined
  const match = SF_INTEGER.exec(raw)
  if (match === null) return undefined
  const n = Number(match[1])
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/** An sf-boolean (`?1` / `?0`), or undefined. */
export function parseSfBoolean (raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined
  const match = SF_BOOLEAN.exec(raw)
  return match === null ? undefined : match[1] === '1'
}

/** `Upload-Limit`, the keys the client uses. `maxAge` is `max-age` (7+) or `expires` (6), in seconds. */
export interface DraftLimits {
  maxSize?: number
  minSize?: number
  maxAppendSize?: number
  minAppendSize?: number
  maxAge?: number
}

const LIMIT_KEYS: Record<string, keyof DraftLimits> = {
  'max-size': 'maxSize',
  'min-size': 'minSize',
  'max-append-size': 'maxAppendSize',
  'min-append-size': 'minAppendSize',
  'max-age': 'maxAge',
  expires: 'maxAge'
}
const MEMBER = /^[ \t]*([a-z*][a-z0-9_.*-]*)(?:=([^;]*))?(;.*)?[ \t]*$/

/**
 * `Upload-Limit` (an sf-dictionary). Unknown keys are ignored; a known key
 * whose value is not a non-negative integer makes the whole field absent.
 */
export function parseUploadLimit (raw: string | undefined): DraftLimits | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const limits: DraftLimits = {}
  for (const member of raw.split(',')) {
    const match = MEMBER.exec(member)
    if (match === null) return undefined
    const key = LIMIT_KEYS[match[1]!]
    if (key === undefined) continue
    const value = match[2] === undefined ? undefined : parseSfInteger(match[2])
    if (value === undefined) return undefined
    limits[key] = value
  }
  return limits
}

/** The interop version of an interim response, when it is ours. */
export function isOurs (headers: IncomingHttpHeaders, version: DraftInteropVersion): boolean {
  return parseSfInteger(headerValue(headers, 'upload-draft-interop-version')) === version
}

/** RFC 5987 attr-char: what goes unencoded in `filename*`. */
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/

/**
 * `Content-Disposition: inline; filename="…"`, plus `filename*=UTF-8''…`
 * (RFC 6266, RFC 8187) when the name is not plain printable ASCII; the plain
 * `filename` then carries an ASCII stand-in.
 */
export function contentDisposition (filename: string): string {
  const printable = /^[\x20-\x7e]*$/.test(filename)
  const fallback = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '\\$&')
  if (printable) return `inline; filename="${fallback}"`
  let encoded = ''
  for (const byte of Buffer.from(filename, 'utf8')) {
    const char = String.fromCharCode(byte)
    encoded += byte < 0x80 && ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return `inline; filename="${fallback}"; filename*=UTF-8''${encoded}`
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[\\x20-\\x7e\\t]*)?$`)

/**
 * The representation headers of a creation, from the upload's metadata:
 * Content-Type from `filetype` (else application/octet-stream),
 * Content-Disposition from `filename`, the other keys as a tus
 * Upload-Metadata (not part of the draft; this server and tusd read it).
 */
export function representationHeaders (metadata: Record<string, string>): Record<string, string> {
  const { filetype, filename, ...rest } = metadata
  if (filetype !== undefined && filetype !== '' && !MEDIA_TYPE.test(filetype)) {
    throw new TypeError(`fastify-tus client: metadata filetype must be a media type like image/png to be sent as Content-Type, got ${JSON.stringify(filetype.slice(0, 100))}`)
  }
  const headers: Record<string, string> = { 'Content-Type': filetype === undefined || filetype === '' ? OCTET_STREAM_TYPE : filetype }
  if (filename !== undefined && filename !== '') headers['Content-Disposition'] = contentDisposition(filename)
  const others = encodeMetadata(rest)
  if (others !== '') headers['Upload-Metadata'] = others
  return headers
}

/** What a HEAD (offset retrieval) says, in the client's TusUploadInfo shape, plus the limits. */
export function parseDraftUploadInfo (url: string, headers: IncomingHttpHeaders): { info: TusUploadInfo; limits: DraftLimits | undefined } {
  const offset = parseSfInteger(headerValue(headers, 'upload-offset'))
  if (offset === undefined) throw new TusProtocolError(`HEAD ${url} answered without a valid Upload-Offset`)
  const length = parseSfInteger(headerValue(headers, 'upload-length')) ?? null
  const limits = parseUploadLimit(headerValue(headers, 'upload-limit'))
  return {
    info: {
      url,
      offset,
      length,
      metadata: {},
      expires: limits?.maxAge === undefined ? null : new Date(Date.now() + limits.maxAge * 1000),
      concat: null,
      // Optional since draft -13: absent reads as not complete (an empty last append settles it).
      complete: parseSfBoolean(headerValue(headers, 'upload-complete')) === true
    },
    limits
  }
}

/**
 * Where a 409 says to go on from: `Upload-Offset`, else the problem
 * document's `expected-offset`; undefined when it says neither.
 */
export function conflictOffset (error: TusHttpError): number | undefined {
  const header = error.headers['upload-offset']
  const offset = parseSfInteger(Array.isArray(header) ? header[0] : header)
  if (offset !== undefined) return offset
  try {
    const problem = JSON.parse(error.body) as Record<string, unknown>
    const expected = problem?.['expected-offset']
    return typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0 ? expected : undefined
  } catch {
    return undefined
  }
}

/** An answer that says `Upload-Complete: ?1`: the target resource's own answer, not one of the upload protocol. */
export function answersAsTarget (error: TusHttpError): boolean {
  const value = error.headers['upload-complete']
  return parseSfBoolean(Array.isArray(value) ? value[0] : value) === true
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined. */
export function retryAfter (error: TusHttpError, now = Date.now()): number | undefined {
  const value = error.headers['retry-after']
  const raw = (Array.isArray(value) ? value[0] : value)?.trim()
  if (raw === undefined || raw === '') return undefined
  if (/^\d+$/.test(raw)) return Number(raw) * 1000
  const date = Date.parse(raw)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** One field of a header record (the first value, if repeated). */
export function fieldOf (headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** A Location made absolute against the request's URL. */
export function resolveLocation (location: string, base: string, where: string): string {
  try {
    return new URL(location.trim(), base).href
  } catch {
    throw new TusProtocolError(`${where} gave an invalid Location "${location.slice(0, 200)}"`)
  }
}
