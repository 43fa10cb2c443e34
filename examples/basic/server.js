// The smallest tus server: `node examples/basic/server.js` (after `npm install`).
// Uploads land in ./uploads, their metadata in ./uploads.db (SQLite).
import Fastify from 'fastify'
import tus from 'fastify-tus'

const app = Fastify({ logger: true })
await app.register(tus, {
  prefix: '/files',
  uploadDir: process.env.UPLOAD_DIR ?? './uploads',
  db: process.env.DB_PATH ?? './uploads.db'
})
app.tus.addHook('onComplete', async ({ upload }) => {
  app.log.info({ id: upload.id, bytes: upload.length, metadata: upload.metadata }, 'upload finished')
})
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })
