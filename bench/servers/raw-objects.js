// The part the raw baselines on object storage (raw-s3.js, raw-azure.js) share:
// a node:http tus server (serveRaw() in common.js) that streams each body
// straight into the store's part requests (S3 UploadPart, Azure Put Block),
// with as little else as possible. The store's own calls come in `store`; each
// file's comment says what they are.
//
// What it does:
// - POST: store.start(upload) (for Upload-Length 0: store.putEmpty(upload)
//   instead, and the upload is done), then, with a body (creation-with-upload),
//   the same as a PATCH.
// - PATCH: the body goes, as it arrives from the socket, into store.putPart
//   requests of exactly the part size (length known, no copy, no disk, no
//   buffering beyond the streams'), one after the other. When the body ends the
//   upload, what is left (less than a part) is its last part, and the answer is
//   sent after store.complete(upload): the object is whole by then.
// - HEAD: the offset from memory.
//
// What it does not do:
// - The bytes of a PATCH that neither fill a part nor end the upload are kept
//   in memory until the next PATCH (at most one part less a byte per upload),
//   and the offset answered counts them: they are durable nowhere (a restart,
//   or a later failed part, loses them), unlike ours and the @tus stores, which
//   have stored every byte of an offset they answer. Bodies that are whole multiples of the part size,
//   or end the upload, never leave such a tail.
// - No validation (Upload-Offset, lengths, Tus-Resumable), no Upload-Metadata,
//   no Upload-Defer-Length, no chunked bodies (Content-Length is required), no
//   locking, no recovery: all state is in this process's memory.
import { Readable } from 'node:stream'
import { serveRaw } from './common.js'

/** Hands out a request body's bytes in pieces of given lengths, each as the Readable body of one store request. */
class BodyPieces {
  constructor (req) {
    this.source = req[Symbol.asyncIterator]()
    this.leftover = undefined
  }

  /** The body's next chunk, at most `max` bytes (the rest stays for the next call); undefined at its end. */
  async next (max) {
    let chunk = this.leftover
    this.leftover = undefined
    if (chunk === undefined) {
      const r = await this.source.next()
      if (r.done) return undefined
      chunk = r.value
    }
    if (chunk.length > max) {
      this.leftover = chunk.subarray(max)
      chunk = chunk.subarray(0, max)
    }
    return chunk
  }

  /** A stream of `held` (bytes kept from earlier PATCHes) followed by the body's next `length` bytes. */
  piece (held, length) {
    const pieces = this
    return Readable.from((async function * () {
      yield * held
      for (let left = length; left > 0;) {
        const chunk = await pieces.next(left)
        if (chunk === undefined) throw new Error('the request body ended before its Content-Length')
        left -= chunk.length
        yield chunk
      }
    })(), { objectMode: false })
  }

  /** The rest of the body, appended to `into`; answers its length. */
  async rest (into) {
    let n = 0
    for (let chunk = await this.next(Infinity); chunk !== undefined; chunk = await this.next(Infinity)) {
      into.push(chunk)
      n += chunk.length
    }
    return n
  }
}

/**
 * Serves the raw baseline on a store:
 * - start(upload): before the first part (may set fields of `upload`);
 * - putEmpty(upload): the whole of an upload of length 0;
 * - putPart(upload, partNumber, body, length): one part (numbers from 1), body a
 *   Readable of exactly `length` bytes; answers what complete() needs of it;
 * - complete(upload): joins `upload.parts` (putPart's answers, in order) into the object.
 * An upload is { key, length, offset, parts, held, heldBytes }, its key its id.
 */
export function serveRawObjects (label, partSize, store) {
  async function writeBody (req, upload) {
    let unread = Number(req.headers['content-length'])
    const end = upload.offset + unread
    const last = end === upload.length
    const pieces = new BodyPieces(req)
    // Full parts, and on the last PATCH also the short last part.
    while (upload.heldBytes + unread >= partSize || (last && upload.heldBytes + unread > 0)) {
      const fromBody = Math.min(unread, partSize - upload.heldBytes)
      upload.parts.push(await store.putPart(upload, upload.parts.length + 1, pieces.piece(upload.held, fromBody), upload.heldBytes + fromBody))
      upload.held = []
      upload.heldBytes = 0
      unread -= fromBody
    }
    // Less than a part, not the end: kept in memory for the next PATCH (see the top).
    if (unread > 0) upload.heldBytes += await pieces.rest(upload.held)
    upload.offset = end
    if (last) await store.complete(upload)
  }

  return serveRaw(label, {
    chunked: false,
    async create (id, length) {
      const upload = { key: id, length, offset: 0, parts: [], held: [], heldBytes: 0 }
      if (length === 0) await store.putEmpty(upload)
      else await store.start(upload)
      return upload
    },
    write: writeBody
  })
}
