/** OPTIONS: what this server speaks. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { parseInteropVersion } from './draft/fields.js'
import { newestVersion, uploadLimit, type DraftVersion } from './draft/select.js'
import type { TusContext } from './context.js'
import { TUS_VERSION } from './headers.js'

export const EXTENSIONS = [
  'creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration',
  'checksum', 'concatenation', 'concatenation-unfinished'
] as const

/** Computed once at start: the answer depends only on the options. */
export function discoveryHeaders (ctx: TusContext): Record<string, string> {
  const { checksumAlgorithms, expiration, maxSize } = ctx.options
  // Only what is switched on is advertised: no checksum without algorithms, no expiration without a period.
  const extensions = EXTENSIONS.filter((name) =>
    (name !== 'checksum' || checksumAlgorithms.length > 0) && (name !== 'expiration' || expiration > 0))
  const headers: Record<string, string> = { 'Tus-Version': TUS_VERSION, 'Tus-Extension': extensions.join(',') }
  if (checksumAlgorithms.length > 0) headers['Tus-Checksum-Algorithm'] = checksumAlgorithms.join(',')
  if (maxSize > 0) headers['Tus-Max-Size'] = String(maxSize)
  return headers
}

/**
 * tus discovery, and for the IETF draft the upload limits (`min-size=0` when
 * there are none), in the keys of the interop version the request names, else
 * of the newest served.
 */
export function handleOptions (ctx: TusContext, request: FastifyRequest, reply: FastifyReply): void {
  const headers = ctx.discovery ??= discoveryHeaders(ctx)
  const named = parseInteropVersion(request.headers) as DraftVersion | undefined
  const version = named !== undefined && ctx.options.draftVersions.includes(named) ? named : newestVersion(ctx)
  reply.code(204).headers(headers)
  if (version !== undefined) reply.header('Upload-Limit', uploadLimit(ctx, version))
  reply.send()
}
