/**
 * Streams one PATCH body into an upload at its current offset and moves the
 * offset; the rules on the body are shared with creation-with-upload. The caller
 * holds the lock.
 *
 * Outcomes:
 * - the whole body arrived (and matched its checksum): offset advances by it;
 * - the client went away mid-body: the bytes that reached storage are kept and
 *   the offset advances by them, so a resume continues from there, unless a
 *   checksum was sent, in which case the unverified bytes are dropped;
 * - the body broke a rule (too long, wrong checksum): the bytes are cut back and
 *   the offset stays where it was;
 * - storage failed: the offset advances by what was stored and the request fails;
 * - the lock was lost (a shared lease not renewed in time): nothing more is
 *   written, cut back or recorded, since another instance may own the upload now.
 */
import type { FastifyRequest } from 'fastify'
import type { InterruptionReason, Lock, UploadRecord } from '../../types/index.js'
import type { TusContext } from './context.js'
import { TusError } from './errors.js'
import { BodyReadError, meterBody, type BodyActivity, type MeteredBody } from './checksum.js'
import { ShutdownCut } from '../drain.js'
import type { ChecksumHeader } from './headers.js'

export interface WriteOutcome {
  /** The upload after the write, as the row now says. */
  upload: UploadRecord
  completed: boolean
}

export function expiryFromNow (ctx: TusContext): Date | null {
  return ctx.options.expiration > 0 ? new Date(Date.now() + ctx.options.expiration) : null
}

/** How many more bytes this request may carry, and the reason given when it carries more. */
function allowance (ctx: TusContext, upload: Pick<UploadRecord, 'offset' | 'length'>): { limit: number; reason: string } {
  const { maxSize, maxChunkSize } = ctx.options
  let limit = Number.MAX_SAFE_INTEGER
  let reason = ''
  const tighten = (candidate: number, why: string): void => {
    if (candidate < limit) { limit = candidate; reason = why }
  }
  if (upload.length !== null) tighten(upload.length - upload.offset, 'body goes past Upload-Length')
  if (maxSize > 0) tighten(maxSize - upload.offset, `upload would exceed the maximum size of ${maxSize} bytes`)
  if (maxChunkSize > 0) tighten(maxChunkSize, `request body exceeds the maximum chunk size of ${maxChunkSize} bytes`)
  return { limit, reason }
}

/**
 * The request body, limited to what the upload may still take (a declared
 * Content-Length beyond it answers 413 before anything is read) and hashed
 * when a checksum was sent.
 */
export function meteredRequestBody (
  ctx: TusContext,
  request: FastifyRequest,
  upload: Pick<UploadRecord, 'offset' | 'length'>,
  checksum: ChecksumHeader | undefined,
  activity?: BodyActivity
): MeteredBody {
  const { limit, reason } = allowance(ctx, upload)
  const declared = request.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) throw new TusError(413, reason)
  return meterBody(request.raw, limit, reason, checksum, activity)
}

/** The answer to a request refused or cut because the server is shutting down: retry, elsewhere if there is an elsewhere. */
export const shuttingDown = (): TusError =>
  new TusError(503, 'the server is shutting down; retry (resume from the offset a HEAD reports)', { 'Retry-After': '1', Connection: 'close' })

/** The body's length when the request announced it (Content-Length; no body at all is 0), else undefined (chunked). */
export function bodyLength (request: FastifyRequest): number | undefined {
  const { headers } = request
  if (headers['transfer-encoding'] !== undefined) return undefined
  const declared = headers['content-length']
  return declared === undefined ? 0 : Number(declared)
}

/** Whether a body of `length` bytes at `start`, arriving whole, completes the upload and is kept as it is (no checksum to judge it). */
export function completesUpload (upload: Pick<UploadRecord, 'length'>, start: number, length: number | undefined, checksum: ChecksumHeader | undefined): boolean {
  return checksum === undefined && upload.length !== null && length !== undefined && start + length === upload.length
}

export const checksumMismatch = (checksum: ChecksumHeader): TusError =>
  new TusError(460, `Upload-Checksum ${checksum.algorithm} does not match the body`)

/**
 * The answer for a body that was not accepted: a broken rule as it is, a client
 * that went away mid-body 400, a storage failure 500 (logged, with `storageReason`).
 */
export function bodyFailure (ctx: TusContext, id: string, failure: unknown, storageReason: string): TusError {
  if (failure instanceof TusError) return failure
  if (failure instanceof BodyReadError) return new TusError(400, 'request body ended before it was complete')
  if (failure instanceof ShutdownCut) return shuttingDown()
  if ((failure as NodeJS.ErrnoException | null)?.code === 'ELENGTHREQUIRED') return new TusError(411, 'this server needs the length of a request body in advance: send Content-Length, not a chunked body')
  ctx.log.error({ err: failure, upload: id }, 'fastify-tus: storage write failed')
  return new TusError(500, storageReason)
}

/**
 * A writer that lost its lock stops short of every step that changes the bytes or
 * the row: another instance may have taken the upload over after the lease lapsed
 * (this process was frozen, or could not reach the database) and written past it.
 */
function assertHeld (lock: Pick<Lock, 'held'>): void {
  if (!lock.held()) throw new TusError(503, 'lost the upload\'s lock while writing; resume from the offset a HEAD reports')
}

export async function writeBody (
  ctx: TusContext,
  request: FastifyRequest,
  upload: UploadRecord,
  checksum: ChecksumHeader | undefined,
  lock: Pick<Lock, 'held'>,
  /** True when `upload.length` was declared by this request and is not stored yet. */
  declaresLength = false,
  activity?: BodyActivity
): Promise<WriteOutcome> {
  const start = upload.offset
  const body = meteredRequestBody(ctx, request, upload, checksum, activity)
  // The offset the row holds; checkpoints move it forward while the body streams.
  let committed = start
  let expiresAt = upload.expiresAt
  const moveOffset = async (to: number, complete: boolean): Promise<void> => {
    assertHeld(lock)
    const expiry = complete ? null : expiryFromNow(ctx)
    if (!await ctx.uploads.advanceOffset(upload.id, committed, to, { expiresAt: expiry, complete, partial: upload.concat === 'partial' })) {
      throw new TusError(409, 'upload offset changed while writing')
    }
    committed = to
    expiresAt = expiry
  }
  // A checksummed body is all or nothing, so only unchecked bodies checkpoint.
  const every = ctx.options.checkpointBytes
  const checkpoint = checksum === undefined && every > 0
    ? { every, at: async (n: number) => { if (start + n !== upload.length) await moveOffset(start + n, false) } }
    : undefined
  const progress = activity !== undefined && ctx.hooks.has('onProgress') ? watchProgress(ctx, request, upload, activity) : undefined
  try {
    return await streamAndCommit()
  } finally {
    progress?.end(committed)
  }

  async function streamAndCommit (): Promise<WriteOutcome> {
    const length = bodyLength(request)
    const result = await ctx.drain.during(body, async () => ctx.store.write(upload.id, start, body.source, {
      flush: ctx.options.fsync, checkpoint, owned: lock.held, length,
      // A length this request declares is recorded after the write: until then the body does not complete anything.
      completes: !declaresLength && completesUpload(upload, start, length, checksum)
    }))
    if (!lock.held()) interrupted(ctx, request, { ...upload, offset: committed }, 'lock-lost')
    assertHeld(lock)

    // How many of the bytes that reached storage this request may keep.
    let keep = result.bytesWritten
    let failure: unknown = result.error
    if (result.error instanceof TusError) {
      keep = 0 // a rule was broken: nothing of this request stays
    } else if (checksum !== undefined) {
      if (result.error !== undefined) keep = 0 // an unfinished chunk cannot be verified
      else if (!body.checksumMatches()) {
        keep = 0
        failure = checksumMismatch(checksum)
      }
    }

    const offset = start + keep
    const completed = upload.length !== null && offset === upload.length
    // Going back (a checkpointed body that was then refused): the offset moves
    // first, then the bytes go, so the offset is never ahead of the bytes.
    if (offset < committed) await moveOffset(offset, false)
    if (keep < result.bytesWritten) {
      assertHeld(lock)
      await ctx.store.truncate(upload.id, offset)
    }
    // The declared length is kept when the request is accepted, or when some of its bytes are.
    if (declaresLength && (keep > 0 || failure === undefined)) {
      assertHeld(lock)
      if (!await ctx.uploads.declareLength(upload.id, upload.length!)) throw new TusError(409, 'Upload-Length was declared concurrently')
      ctx.hooks.notify('onLengthDeclared', { request, upload: { ...upload, offset: committed } })
    }
    if (completed) {
      // The bytes become the finished upload before the row says so.
      assertHeld(lock)
      await ctx.store.finish(upload.id, offset)
    }
    if (offset !== committed || completed) await moveOffset(offset, completed)
    if (keep > 0) ctx.events.publish('upload:received', () => ({ id: upload.id, bytes: keep }))
    if (failure !== undefined) {
      const reason = interruptionOf(failure)
      if (reason !== undefined) interrupted(ctx, request, { ...upload, offset, expiresAt }, reason)
      throw bodyFailure(ctx, upload.id, failure, 'storage write failed; the upload can be resumed from its offset')
    }
    return { upload: { ...upload, offset, expiresAt, completedAt: completed ? new Date() : null }, completed }
  }
}

/** Why a body that failed ended early, or undefined when it broke a rule (too long, wrong checksum). */
function interruptionOf (failure: unknown): InterruptionReason | undefined {
  if (failure instanceof TusError) return undefined
  if (failure instanceof BodyReadError) return 'client'
  if (failure instanceof ShutdownCut) return 'shutdown'
  const code = (failure as NodeJS.ErrnoException | null)?.code
  if (code === 'ELOCKLOST') return 'lock-lost'
  if (code === 'ELENGTHREQUIRED') return undefined // refused before a byte was read
  return 'storage'
}

/** A PATCH ended before its body did: onInterrupted and the 'upload:interrupted' event, with the offset kept. */
function interrupted (ctx: TusContext, request: FastifyRequest, upload: UploadRecord, reason: InterruptionReason): void {
  ctx.events.publish('upload:interrupted', () => ({ upload, reason }))
  ctx.hooks.notify('onInterrupted', { request, upload, reason })
}

/**
 * onProgress while the body streams: every progressInterval, only when the
 * offset moved, and once at the end with the offset committed. Handlers are not
 * awaited, so the write path never waits for them.
 */
function watchProgress (ctx: TusContext, request: FastifyRequest, upload: UploadRecord, activity: BodyActivity): { end: (offset: number) => void } {
  let reported = upload.offset
  const report = (offset: number): void => {
    if (offset === reported) return
    reported = offset
    ctx.hooks.notify('onProgress', { request, upload: { ...upload, offset } })
  }
  const timer = setInterval(() => report(upload.offset + activity.received), ctx.options.progressInterval)
  timer.unref()
  return {
    end: (offset) => {
      clearInterval(timer)
      report(offset)
    }
  }
}
