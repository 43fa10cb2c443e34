/**
 * A raw node:http client for the resumable-upload draft (draft-ietf-httpbis-
 * resumable-upload): exact headers, exact bodies, no retries, and every 1xx
 * the server sends (104 Upload Resumption Supported, 100 Continue, ...)
 * captured in order from the ClientRequest's 'information' events.
 *
 *   const res = await draftRequest(endpoint, { method: 'POST', headers: creationHeaders(9, { complete: false }) })
 *   const resumption = interimOf(res, 104)
 *   const url = new URL(res.headers.location!, endpoint).href
 *   await draftRequest(url, { method: 'PATCH', headers: appendHeaders(9, 0, true), body: data })
 */
import { request as httpRequest, type Agent, type ClientRequest, type IncomingHttpHeaders, type InformationEvent } from 'node:http'

/** The interop versions the server is meant to speak (draft -04/-05 … -12+). */
export const DRAFT_INTEROP_VERSIONS = [6, 7, 8, 9] as const
export type DraftInteropVersion = number

export interface Informational {
  status: number
  statusMessage: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
}

export interface DraftResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  /** Every 1xx before the final response, in arrival order (100 Continue included). */
  informational: Informational[]
}

export interface DraftRequestOptions {
  method: string
  headers?: Record<string, string | string[] | number>
  /**
   * The request body: a Buffer or string, sent and ended; or a function that
   * writes and ends the body itself (in pieces, slowly, or aborting mid-way),
   * like `send`'s `stream` in ./http.ts. Without a body the request is ended empty.
   */
  body?: Buffer | string | ((req: ClientRequest) => void)
  /** Default `false`: a fresh connection. Pass a keep-alive Agent to test connection reuse. */
  agent?: Agent | false
  /** Called for each 1xx as it arrives, while the body may still be streaming (e.g. to pace an upload by its 104s). */
  onInformation?: (info: Informational, req: ClientRequest) => void
}

export function draftRequest (url: string, options: DraftRequestOptions): Promise<DraftResponse> {
  return new Promise((resolve, reject) => {
    const informational: Informational[] = []
    const req = httpRequest(url, { method: options.method, headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), informational })
      })
      res.on('error', reject)
    })
    req.on('information', (event: InformationEvent) => {
      const info: Informational = {
        status: event.statusCode,
        statusMessage: event.statusMessage,
        headers: event.headers,
        rawHeaders: event.rawHeaders
      }
      informational.push(info)
      options.onInformation?.(info, req)
    })
    req.on('error', reject)
    const body = options.body
    if (typeof body === 'function') body(req)
    else req.end(body)
  })
}

/** The 1xx responses with that status, in order. */
export const interimsOf = (res: DraftResponse, status: number): Informational[] =>
  res.informational.filter((i) => i.status === status)

/** The first 1xx with that status, if any. */
export const interimOf = (res: DraftResponse, status: number): Informational | undefined =>
  res.informational.find((i) => i.status === status)

const sfBoolean = (value: boolean): string => value ? '?1' : '?0'

/**
 * Headers of an upload creation request (any method with content, to the
 * target resource): the interop version, `Upload-Complete`, and
 * `Upload-Length` when `length` is given. No `Content-Type` of the draft's
 * own: the representation's media type is the caller's to add.
 */
export function creationHeaders (version: DraftInteropVersion, options: { complete: boolean, length?: number }): Record<string, string> {
  const headers: Record<string, string> = {
    'Upload-Draft-Interop-Version': String(version),
    'Upload-Complete': sfBoolean(options.complete)
  }
  if (options.length !== undefined) headers['Upload-Length'] = String(options.length)
  return headers
}

/** Headers of an append (PATCH to the upload resource). */
export function appendHeaders (version: DraftInteropVersion, offset: number, complete: boolean): Record<string, string> {
  return {
    'Content-Type': 'application/partial-upload',
    'Upload-Offset': String(offset),
    'Upload-Complete': sfBoolean(complete),
    'Upload-Draft-Interop-Version': String(version)
  }
}

/** Headers of an offset retrieval (HEAD) or cancellation (DELETE): only the interop version. */
export const draftHeaders = (version: DraftInteropVersion): Record<string, string> =>
  ({ 'Upload-Draft-Interop-Version': String(version) })
