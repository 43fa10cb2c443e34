/**
 * Which protocol a request speaks. The IETF draft "Resumable Uploads for HTTP"
 * is served on the same routes as tus 1.0.0, chosen per request: a creation
 * (POST) with `Upload-Complete`, an append (PATCH) in
 * `application/partial-upload`, an offset retrieval (HEAD) or a cancellation
 * (DELETE), each with an `Upload-Draft-Interop-Version` this server serves
 * (option `draftVersions`). Anything else, unknown versions included, is a tus
 * 1.0.0 request, as tusd does.
 */
import type { FastifyRequest } from 'fastify'
import type { TusContext } from '../context.js'
import { mediaType } from '../headers.js'
import { parseInteropVersion, parseSfBoolean, serializeUploadLimit } from './fields.js'

export const PARTIAL_UPLOAD = 'application/partial-upload'
/** The interop versions this implementation speaks: drafts -04/-05 (6), -06…-08 (7), -09…-11 (8), -12 and later (9). */
export const DRAFT_VERSIONS = Object.freeze([6, 7, 8, 9] as const)
export type DraftVersion = (typeof DRAFT_VERSIONS)[number]

export interface DraftRequest {
  version: DraftVersion
  /** `Upload-Complete` of the request, when it parsed. */
  complete: boolean | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on requests of the IETF draft (see lib/protocol/draft/select.ts); undefined for tus 1.0.0. */
    tusDraft: DraftRequest | undefined
  }
}

export function draftOf (ctx: TusContext, request: FastifyRequest): DraftRequest | undefined {
  const versions = ctx.options.draftVersions
  if (versions.length === 0) return undefined
  const { headers } = request
  const version = parseInteropVersion(headers) as DraftVersion | undefined
  if (version === undefined || !versions.includes(version)) return undefined
  const complete = parseSfBoolean(headers['upload-complete'])
  switch (request.method) {
    case 'POST': return complete === undefined || request.headers['x-http-method-override'] !== undefined ? undefined : { version, complete }
    case 'PATCH': return mediaType(headers) === PARTIAL_UPLOAD ? { version, complete } : undefined
    case 'HEAD': case 'DELETE': return { version, complete }
    default: return undefined
  }
}

/**
 * `Upload-Limit` as a version writes it: `max-size` from maxSize, `max-append-size`
 * from maxChunkSize, the upload's lifetime from expiration (`expires` in interop 6,
 * `max-age` since), `min-size=0` when there is no limit at all.
 */
export function uploadLimit (ctx: TusContext, version: DraftVersion): string {
  const { maxSize, maxChunkSize, expiration } = ctx.options
  return serializeUploadLimit({
    ...(maxSize > 0 ? { maxSize } : {}),
    ...(maxChunkSize > 0 ? { maxAppendSize: maxChunkSize } : {}),
    ...(expiration > 0 ? { maxAge: Math.floor(expiration / 1000) } : {})
  }, version)
}

/** The newest version served, for answers to requests that name none (OPTIONS). */
export const newestVersion = (ctx: TusContext): DraftVersion | undefined => ctx.options.draftVersions.at(-1) as DraftVersion | undefined
