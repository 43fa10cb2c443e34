// Raw node:http baseline on S3: what the S3 server itself costs a tus server
// that streams each body straight into the bucket, with as little else as
// possible. Same SDK, client settings and part size as ours-s3 and tus-s3
// (s3Settings() in common.js); an upload is the object at key `<id>`.
//
// What it does:
// - POST: CreateMultipartUpload on the upload's key (for Upload-Length 0: an
//   empty PutObject instead, and the upload is done), then, with a body
//   (creation-with-upload), the same as a PATCH.
// - PATCH: the body goes, as it arrives from the socket, into UploadPart
//   requests of exactly the part size (ContentLength known, no copy, no disk,
//   no buffering beyond the streams'), one after the other. When the body ends
//   the upload, what is left (less than a part) is its last part, and the answer
//   is sent after CompleteMultipartUpload: the object is whole by then.
// - HEAD: the offset from memory.
//
// What it does not do:
// - The bytes of a PATCH that neither fill a part nor end the upload are kept
//   in memory until the next PATCH (at most one part less a byte per upload),
//   and the offset answered counts them: they are durable nowhere (a restart,
//   or a later failed part, loses them), unlike ours-s3 and @tus/s3-store, which
//   store such a tail as an object first. Bodies that are whole multiples of the
//   part size, or end the upload, never leave such a tail.
// - It is not the fewest S3 requests possible for every upload: a small upload
//   sent whole costs CreateMultipartUpload, UploadPart and
//   CompleteMultipartUpload, where one PutObject would do (on Swift the
//   multipart requests are the dearer kind), so a server that writes small
//   uploads another way may beat it there.
// - No validation (Upload-Offset, lengths, Tus-Resumable), no Upload-Metadata,
//   no Upload-Defer-Length, no chunked bodies (Content-Length is required), no
//   locking, no recovery: all state is in this process's memory.
import http from 'node:http'
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { S3Client, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { announce, logFailure, onStop, s3Settings, s3ClientConfig } from './common.js'

const s3 = s3Settings()
const { bucket: Bucket, partSize } = s3
const client = new S3Client(s3ClientConfig(s3))
const PREFIX = '/files/'
// id -> { key, uploadId, length, offset, parts: [{ PartNumber, ETag }], held: Buffer[], heldBytes }
const uploads = new Map()

/** Hands out a request body's bytes in pieces of given lengths, each as the Readable body of one S3 request. */
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

async function writeBody (req, upload) {
  let unread = Number(req.headers['content-length'])
  const end = upload.offset + unread
  const last = end === upload.length
  const pieces = new BodyPieces(req)
  // Full parts, and on the last PATCH also the short last part.
  while (upload.heldBytes + unread >= partSize || (last && upload.heldBytes + unread > 0)) {
    const fromBody = Math.min(unread, partSize - upload.heldBytes)
    const PartNumber = upload.parts.length + 1
    const { ETag } = await client.send(new UploadPartCommand({
      Bucket, Key: upload.key, UploadId: upload.uploadId, PartNumber, Body: pieces.piece(upload.held, fromBody), ContentLength: upload.heldBytes + fromBody
    }))
    upload.parts.push({ PartNumber, ETag })
    upload.held = []
    upload.heldBytes = 0
    unread -= fromBody
  }
  // Less than a part, not the end: kept in memory for the next PATCH (see the top).
  if (unread > 0) upload.heldBytes += await pieces.rest(upload.held)
  upload.offset = end
  if (last) {
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: upload.key, UploadId: upload.uploadId, MultipartUpload: { Parts: upload.parts } }))
  }
}

const hasBody = (req) => Number(req.headers['content-length'] ?? 0) > 0

async function handle (req, res) {
  const id = req.url.startsWith(PREFIX) ? req.url.slice(PREFIX.length) : ''
  if (req.method === 'POST' && (req.url === PREFIX || req.url === '/files')) {
    if (req.headers['transfer-encoding'] !== undefined) { req.resume(); res.writeHead(411).end(); return }
    const newId = randomBytes(16).toString('hex')
    const upload = { key: newId, uploadId: undefined, length: Number(req.headers['upload-length'] ?? 0), offset: 0, parts: [], held: [], heldBytes: 0 }
    if (upload.length === 0) {
      await client.send(new PutObjectCommand({ Bucket, Key: upload.key, Body: Buffer.alloc(0), ContentLength: 0 }))
    } else {
      upload.uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket, Key: upload.key }))).UploadId
    }
    uploads.set(newId, upload)
    const headers = { Location: `http://${req.headers.host}${PREFIX}${newId}`, 'Tus-Resumable': '1.0.0' }
    if (hasBody(req)) {
      await writeBody(req, upload)
      headers['Upload-Offset'] = String(upload.offset)
    } else {
      req.resume()
    }
    res.writeHead(201, headers).end()
    return
  }
  const upload = uploads.get(id)
  if (upload === undefined) {
    req.resume()
    res.writeHead(404).end()
    return
  }
  if (req.method === 'PATCH') {
    if (req.headers['content-length'] === undefined) { req.resume(); res.writeHead(411).end(); return }
    await writeBody(req, upload)
    res.writeHead(204, { 'Upload-Offset': String(upload.offset), 'Tus-Resumable': '1.0.0' }).end()
  } else if (req.method === 'HEAD') {
    res.writeHead(200, { 'Upload-Offset': String(upload.offset), 'Upload-Length': String(upload.length), 'Tus-Resumable': '1.0.0', 'Cache-Control': 'no-store' }).end()
  } else {
    req.resume()
    res.writeHead(405).end()
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    logFailure('raw-s3', err)
    if (!res.headersSent) res.writeHead(500).end()
    else res.destroy()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => announce(server.address().port))
onStop(() => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
