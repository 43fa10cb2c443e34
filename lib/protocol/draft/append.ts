/**
 * Appends in the IETF draft: a PATCH in `application/partial-upload` with
 * `Upload-Offset` and `Upload-Complete` (structured fields). The write itself is
 * the tus PATCH's (locks, checkpoints, crash consistency, hooks); what differs
 * is read here: the offset and completion fields, the length `Upload-Complete:
 * ?1` implies, and `104` progress reports while a long body streams.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TusContext } from '../context.js'
import { TusError } from '../errors.js'
import type { ChecksumHeader } from '../headers.js'
import type { BodyActivity } from '../checksum.js'
import { parseNonNegative } from './fields.js'
import { draftLength } from './create.js'
import { sendInterim } from './interim.js'
import type { DraftRequest } from './select.js'

export function draftPatchInput (request: FastifyRequest, draft: DraftRequest): { offset: number; newLength: number | undefined; checksum: ChecksumHeader | undefined } {
  // A field that does not parse is treated as absent, and both are required on an append.
  const offset = parseNonNegative(request.headers['upload-offset'])
  if (offset === undefined) throw new TusError(400, 'Upload-Offset is required (a non-negative sf-integer)')
  if (draft.complete === undefined) throw new TusError(400, 'Upload-Complete is required (?0 or ?1)')
  return { offset, newLength: draftLength(request, draft, offset), checksum: undefined }
}

/**
 * Apache's mod_proxy answers 502 after 10 interim responses to one request: a
 * request gets at most this many progress reports (one 104 may have gone out at creation).
 */
const MAX_PROGRESS_REPORTS = 8

/**
 * From interop version 8 on, `104` interim responses with `Upload-Offset` report
 * progress while a body streams, every progressInterval and only when the
 * offset moved, at most MAX_PROGRESS_REPORTS times. Answers the function that stops them.
 */
export function reportProgress (ctx: TusContext, reply: FastifyReply, draft: DraftRequest, start: number, activity: BodyActivity): (() => void) | undefined {
  if (draft.version < 8 || !ctx.options.draftInterimResponses) return undefined
  let reported = start
  let sent = 0
  const timer = setInterval(() => {
    const offset = start + activity.received
    if (offset === reported) return
    reported = offset
    if (sendInterim(reply.raw, 104, { 'Upload-Offset': String(offset), 'Upload-Draft-Interop-Version': String(draft.version) }) && ++sent >= MAX_PROGRESS_REPORTS) clearInterval(timer)
  }, ctx.options.progressInterval)
  timer.unref()
  return () => clearInterval(timer)
}
