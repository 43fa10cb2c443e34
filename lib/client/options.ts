/**
 * Options of the tus client and of one upload, with their defaults and
 * validation. Checked when the client is made, so a typo fails at once with a
 * message naming the option, not halfway through an upload.
 */
import type { URLStorage } from './storage/url-storage.js'

export type ClientChecksumAlgorithm = 'sha1' | 'sha256' | 'sha512' | 'md5'
export const CHECKSUM_ALGORITHMS: readonly ClientChecksumAlgorithm[] = ['sha1', 'sha256', 'sha512', 'md5']

/** The wire protocol: tus 1.0.0, or the IETF draft "Resumable Uploads for HTTP". */
export type TusClientProtocol = 'tus' | 'ietf-draft'
export const CLIENT_PROTOCOLS: readonly TusClientProtocol[] = ['tus', 'ietf-draft']
/**
 * `Upload-Draft-Interop-Version` of the IETF draft: 6 (drafts -04/-05), 7
 * (-06 to -08), 8 (-09 to -11), 9 (-12 and later).
 */
export type DraftInteropVersion = 6 | 7 | 8 | 9
export const DRAFT_INTEROP_VERSIONS: readonly DraftInteropVersion[] = [6, 7, 8, 9]
export const DEFAULT_DRAFT_VERSION: DraftInteropVersion = 9

/** What `beforeRequest` sees and may change: headers can be added, replaced or removed. */
export interface TusRequestInfo {
  method: string
  url: string
  headers: Record<string, string>
}

/** What `afterResponse` sees. */
export interface TusResponseInfo {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
}

export interface TusTlsOptions {
  /** Verify the server's certificate (default true). `false` is for tests and self-signed servers only. */
  rejectUnauthorized?: boolean
  /** PEM certificate(s) of the authorities to trust instead of Node's bundled list. */
  ca?: string | Buffer | Array<string | Buffer>
  /** PEM client certificate, for servers that require one (mutual TLS). */
  cert?: string | Buffer
  /** PEM private key of the client certificate. */
  key?: string | Buffer
}

export interface TusClientOptions {
  /** The upload creation URL, e.g. 'https://example.com/files'. */
  endpoint: string
  /**
   * 'tus' (default): tus 1.0.0. 'ietf-draft': the IETF draft "Resumable
   * Uploads for HTTP" (creation by POST with Upload-Complete, the upload URL
   * from a 104 interim response, appends in application/partial-upload). No
   * checksums, parallel uploads or concatenation in that mode.
   */
  protocol?: TusClientProtocol
  /** With protocol 'ietf-draft': the Upload-Draft-Interop-Version sent, 6 to 9. Default 9. */
  draftVersion?: DraftInteropVersion
  /** Largest body of one request, in bytes, and the size of the one buffer an upload reads into. Default 1 MiB. */
  chunkSize?: number
  /** Send Upload-Checksum with every chunk; the server must list the algorithm in Tus-Checksum-Algorithm. */
  checksum?: ClientChecksumAlgorithm
  /** Headers added to every request (e.g. Authorization). */
  headers?: Record<string, string>
  /** A request fails with TusTimeoutError when no byte moves either way for this many ms. Default 30 000; 0 disables. */
  timeout?: number
  /** How many times one step (one request and its recovery) is retried before the upload fails. Default 5. */
  maxRetries?: number
  /** First retry delay in ms; each later one is multiplied by `retryBackoff`, with jitter, capped at 60 s. Default 500. */
  retryDelay?: number
  /** Growth factor of the retry delay. Default 2. */
  retryBackoff?: number
  /**
   * Decides whether a failure is retried (while retries remain), replacing the
   * default rule (`isRetryableError`). `attempt` counts from 1. Aborts are never retried.
   */
  onShouldRetry?: (error: Error, attempt: number) => boolean
  /** Called before every request; may change `headers` (e.g. a fresh token). */
  beforeRequest?: (request: TusRequestInfo) => void | Promise<void>
  /** Called after every reply, whatever its status. */
  afterResponse?: (request: TusRequestInfo, response: TusResponseInfo) => void | Promise<void>
  /** TLS settings for https endpoints. */
  tls?: TusTlsOptions
  /** Default URL storage of `upload()` (see UploadOptions.urlStorage). */
  urlStorage?: URLStorage
}

export interface TusProgress {
  /** Bytes the server has acknowledged. */
  bytesUploaded: number
  /** Total size, or null while the source's length is unknown (a stream). */
  bytesTotal: number | null
  /** 0–100, or null while the total is unknown. */
  percent: number | null
  /** Bytes per second over the last few seconds of this session. */
  speed: number
  /** Seconds left at the current speed, or null when it cannot be told. */
  eta: number | null
  /** Chunks acknowledged in this session. */
  chunks: number
  /** Failed attempts that were retried in this session. */
  retries: number
}

export interface UploadOptions {
  /**
   * Upload-Metadata: keys without spaces or commas; string values, or null (or '') for a key without a value.
   * With protocol 'ietf-draft', `filetype` is sent as Content-Type and `filename` as Content-Disposition,
   * the other keys in Upload-Metadata (an extension this server and tusd read).
   */
  metadata?: Record<string, string | null>
  onProgress?: (progress: TusProgress) => void
  /** Cancels the upload; it then rejects with TusAbortError and can be resumed later. */
  signal?: AbortSignal
  /**
   * Split a source of known length into this many partial uploads sent at once
   * (concatenation extension). Default 1. Tus only: a TypeError with protocol 'ietf-draft'.
   */
  parallel?: number
  /** Remembers upload URLs by fingerprint of the source, so a later run resumes instead of starting again. */
  urlStorage?: URLStorage
  /** Keep the stored URL after success (a re-upload of the same source then finds it complete and sends nothing). */
  keepUrl?: boolean
}

/** Options of `TusClient.close()`. */
export interface TusCloseOptions {
  /**
   * How long, in ms, to let the work in flight finish (0 … 2 147 483 647). When
   * it runs out, that work is aborted as by its AbortSignal (it stays
   * resumable) and close() resolves once it has unwound. Default: no limit.
   */
  timeout?: number
}

export interface ResolvedClientOptions {
  endpoint: string
  protocol: TusClientProtocol
  /** The interop version with protocol 'ietf-draft'; undefined with 'tus'. */
  draftVersion: DraftInteropVersion | undefined
  chunkSize: number
  checksum: ClientChecksumAlgorithm | undefined
  headers: Record<string, string>
  timeout: number
  maxRetries: number
  retryDelay: number
  retryBackoff: number
  onShouldRetry: TusClientOptions['onShouldRetry']
  beforeRequest: TusClientOptions['beforeRequest']
  afterResponse: TusClientOptions['afterResponse']
  tls: TusTlsOptions | undefined
  urlStorage: URLStorage | undefined
}

export const DEFAULT_CHUNK_SIZE = 1024 * 1024
/** Above this a single Buffer allocation is unreasonable for one request body. */
const MAX_CHUNK_SIZE = 1024 * 1024 * 1024

const fail = (message: string): never => { throw new TypeError(`fastify-tus client: ${message}`) }

function integer (value: unknown, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`option ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return value as number
}

const KNOWN = new Set(['endpoint', 'protocol', 'draftVersion', 'chunkSize', 'checksum', 'headers', 'timeout', 'maxRetries', 'retryDelay', 'retryBackoff',
  'onShouldRetry', 'beforeRequest', 'afterResponse', 'tls', 'urlStorage'])

export function resolveClientOptions (input: TusClientOptions): ResolvedClientOptions {
  if (input === null || typeof input !== 'object') fail('options must be an object with at least { endpoint }')
  for (const key of Object.keys(input)) if (!KNOWN.has(key)) fail(`unknown option "${key}"`)
  let endpoint: URL | undefined
  try {
    endpoint = new URL(input.endpoint)
  } catch {
    fail(`option endpoint must be an absolute http(s) URL, got ${JSON.stringify(input.endpoint)}`)
  }
  if (endpoint!.protocol !== 'http:' && endpoint!.protocol !== 'https:') fail('option endpoint must be an http: or https: URL')
  if (input.checksum !== undefined && !CHECKSUM_ALGORITHMS.includes(input.checksum)) {
    fail(`option checksum must be one of ${CHECKSUM_ALGORITHMS.join(', ')}, got ${JSON.stringify(input.checksum)}`)
  }
  const protocol = input.protocol ?? 'tus'
  if (!CLIENT_PROTOCOLS.includes(protocol)) fail(`option protocol must be 'tus' or 'ietf-draft', got ${JSON.stringify(input.protocol)}`)
  if (input.draftVersion !== undefined) {
    if (protocol !== 'ietf-draft') fail("option draftVersion needs protocol: 'ietf-draft'")
    if (!DRAFT_INTEROP_VERSIONS.includes(input.draftVersion)) fail(`option draftVersion must be one of ${DRAFT_INTEROP_VERSIONS.join(', ')}, got ${JSON.stringify(input.draftVersion)}`)
  }
  if (protocol === 'ietf-draft' && input.checksum !== undefined) {
    fail("option checksum (tus Upload-Checksum) does not exist in the IETF draft: leave it out with protocol: 'ietf-draft'")
  }
  for (const name of ['onShouldRetry', 'beforeRequest', 'afterResponse'] as const) {
    if (input[name] !== undefined && typeof input[name] !== 'function') fail(`option ${name} must be a function`)
  }
  const headers = input.headers ?? {}
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' || /[\r\n]/.test(value)) fail(`header ${name} must be a one-line string`)
  }
  const retryBackoff = input.retryBackoff ?? 2
  if (typeof retryBackoff !== 'number' || !(retryBackoff >= 1 && retryBackoff <= 10)) fail('option retryBackoff must be a number from 1 to 10')
  return {
    endpoint: endpoint!.href,
    protocol,
    draftVersion: protocol === 'ietf-draft' ? input.draftVersion ?? DEFAULT_DRAFT_VERSION : undefined,
    chunkSize: integer(input.chunkSize, 'chunkSize', DEFAULT_CHUNK_SIZE, 1, MAX_CHUNK_SIZE),
    checksum: input.checksum,
    headers: { ...headers },
    timeout: integer(input.timeout, 'timeout', 30_000, 0),
    maxRetries: integer(input.maxRetries, 'maxRetries', 5, 0, 1000),
    retryDelay: integer(input.retryDelay, 'retryDelay', 500, 0, 60_000),
    retryBackoff,
    onShouldRetry: input.onShouldRetry,
    beforeRequest: input.beforeRequest,
    afterResponse: input.afterResponse,
    tls: input.tls,
    urlStorage: input.urlStorage
  }
}

/** Upload-Metadata keys: the spec forbids spaces and commas, and a key cannot be empty. */
/**
 * Checks metadata and makes every value a string. null (how a server record,
 * like this plugin's, holds a key sent without a value) becomes '', which is
 * sent as a key without a value, so records can be forwarded as they are.
 */
export function validateMetadata (metadata: Record<string, string | null> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (!/^[^\s,]+$/.test(key)) fail(`metadata key ${JSON.stringify(key)} must be non-empty without spaces or commas`)
    if (typeof value !== 'string' && value !== null) fail(`metadata value of ${key} must be a string or null`)
    out[key] = value ?? ''
  }
  return out
}
