// Raw node:http baseline on S3: what the S3 server itself costs a tus server
// that streams each body straight into the bucket, with as little else as
// possible. Same SDK, client settings and part size as ours-s3 and tus-s3
// (s3Settings() in common.js); an upload is the object at key `<id>`.
// The server is raw-objects.js (its comment says what it does and does not do);
// on S3:
// - POST: CreateMultipartUpload on the upload's key (for Upload-Length 0: an
//   empty PutObject instead);
// - each part is an UploadPart request (ContentLength known), and the last PATCH
//   is answered after CompleteMultipartUpload.
// Not the fewest S3 requests possible for every upload: a small upload sent
// whole costs CreateMultipartUpload, UploadPart and CompleteMultipartUpload,
// where one PutObject would do (on Swift the multipart requests are the dearer
// kind), so a server that writes small uploads another way may beat it there.
import { S3Client, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { s3Settings, s3ClientConfig } from './common.js'
import { serveRawObjects } from './raw-objects.js'

const s3 = s3Settings()
const { bucket: Bucket, partSize } = s3
const client = new S3Client(s3ClientConfig(s3))

serveRawObjects('raw-s3', partSize, {
  async start (upload) {
    upload.uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket, Key: upload.key }))).UploadId
  },
  async putEmpty (upload) {
    await client.send(new PutObjectCommand({ Bucket, Key: upload.key, Body: Buffer.alloc(0), ContentLength: 0 }))
  },
  async putPart (upload, PartNumber, Body, ContentLength) {
    const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key: upload.key, UploadId: upload.uploadId, PartNumber, Body, ContentLength }))
    return { PartNumber, ETag }
  },
  async complete (upload) {
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: upload.key, UploadId: upload.uploadId, MultipartUpload: { Parts: upload.parts } }))
  }
})
