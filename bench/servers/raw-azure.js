// Raw node:http baseline on Azure Blob Storage: what the blob service itself
// costs a tus server that streams each body straight into the container, with
// as little else as possible. Same SDK, connection string and block size as
// ours-azure (azureSettings() in common.js); an upload is the block blob `<id>`.
// The server is raw-objects.js (its comment says what it does and does not do);
// on Azure:
// - POST: nothing at Azure (blocks are staged on the blob's name, which needs
//   no creating first); for Upload-Length 0, an empty Put Blob.
// - each block is a Put Block (stageBlock, block ids of one fixed length), and
//   the last PATCH is answered after Put Block List (commitBlockList): the blob
//   is whole, committed, by then.
// - As ours-azure does, the requests whose body is a stream are sent without
//   retries (a stream cannot be sent twice); Put Block List keeps the SDK's
//   default retries.
// Not the fewest requests possible for every upload: a small upload sent whole
// costs a Put Block and a Put Block List, where one Put Blob would do, so a
// server that writes small uploads another way may beat it there.
import { BlobServiceClient } from '@azure/storage-blob'
import { azureSettings } from './common.js'
import { serveRawObjects } from './raw-objects.js'

const azure = azureSettings()
const container = BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container)
const streaming = BlobServiceClient.fromConnectionString(azure.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(azure.container)
const blockId = (n) => Buffer.from(String(n).padStart(6, '0')).toString('base64')

serveRawObjects('raw-azure', azure.blockSize, {
  async start () {},
  async putEmpty (upload) {
    await container.getBlockBlobClient(upload.key).upload(Buffer.alloc(0), 0)
  },
  async putPart (upload, partNumber, body, length) {
    const id = blockId(partNumber)
    await streaming.getBlockBlobClient(upload.key).stageBlock(id, body, length)
    return id
  },
  async complete (upload) {
    await container.getBlockBlobClient(upload.key).commitBlockList(upload.parts)
  }
})
