/**
 * The adapters of object-scenarios.ts: S3 (helpers/s3.ts, the S3-compatible
 * test server) and Azure Blob Storage (helpers/azure.ts, Azurite). Call
 * s3OrSkip / azuriteOrSkip first: these read the service they set up.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import type { ObjectStorage } from './object-scenarios.js'
import { S3_ENDPOINT, bucketContents, objectType, readObject, s3, s3Options, testBucket } from './s3.js'
import { azureOptions, blobService, containerContents, putBlob, readBlob, testContainer } from './azure.js'

const PART_SIZE = 5 << 20

export const S3_STORAGE: ObjectStorage = {
  name: 'S3',
  holder: 'bucket',
  object: 'object',
  part: 'part',
  pending: 'multipart upload',
  partSize: PART_SIZE,
  fresh: testBucket,
  options: (bucket, more = {}) => ({ s3: s3Options(bucket, { ...more, partSize: PART_SIZE }) }),
  serveFlags: (bucket, prefix) => ['--s3-bucket', bucket, '--s3-prefix', prefix, '--s3-endpoint', S3_ENDPOINT!, '--s3-region', 'us-east-1', '--s3-part-size', String(PART_SIZE)],
  read: readObject,
  contentType: objectType,
  contents: async (bucket) => {
    const { objects, uploads } = await bucketContents(bucket)
    return { objects, pending: uploads.map((u) => u.key).sort() }
  },
  put: async (bucket, key, body) => { await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body })) },
  open: async (bucket, states) => {
    const { openS3Store } = await import('../../lib/store/data/s3-bucket.js')
    return openS3Store({ ...s3Options(bucket), prefix: '', partSize: PART_SIZE }, states)
  }
}

export const AZURE_STORAGE: ObjectStorage = {
  name: 'Azure',
  holder: 'container',
  object: 'blob',
  part: 'block',
  pending: 'uncommitted-only blob',
  partSize: PART_SIZE,
  fresh: testContainer,
  options: (container, more = {}) => ({ azure: azureOptions(container, { ...more, blockSize: PART_SIZE }) }),
  serveFlags: (container, prefix) => ['--azure-container', container, '--azure-prefix', prefix, '--azure-block-size', String(PART_SIZE)],
  read: readBlob,
  contentType: async (container, name) => (await blobService().getContainerClient(container).getBlobClient(name).getProperties()).contentType,
  contents: async (container) => {
    const { blobs, uncommitted } = await containerContents(container)
    return { objects: [...blobs].sort(), pending: [...uncommitted].sort() }
  },
  put: putBlob,
  open: async (container, states) => {
    const { openAzureStore } = await import('../../lib/store/data/azure-bucket.js')
    return openAzureStore({ ...azureOptions(container), prefix: '', blockSize: PART_SIZE }, states)
  }
}
