// @tus/server with @tus/s3-store, mounted in Fastify as tus-fastify.js mounts
// it (a pass-through body parser, hijacked replies handed to tusServer.handle).
// The store's defaults otherwise: finished objects at `<id>`, a `<id>.info`
// object beside each, parts split through temporary files in os.tmpdir() (the
// runner points TMPDIR into the run's own directory) and uploaded up to 60 at a
// time. No expiration, so no object tagging (which Swift's s3api does not
// implement). Endpoint, keys and part size: see s3Settings() in common.js.
import Fastify from 'fastify'
import { Server } from '@tus/server'
import { S3Store } from '@tus/s3-store'
import { announce, logFailure, onStop, s3Settings, s3ClientConfig } from './common.js'

const s3 = s3Settings()
const datastore = new S3Store({
  partSize: s3.partSize,
  s3ClientConfig: { bucket: s3.bucket, ...s3ClientConfig(s3) }
})
// @tus/server answers a failure with 500 and logs nothing: say why on stderr,
// which the runner quotes when a run fails. Returns nothing: the answer is unchanged.
const onResponseError = (_req, err) => { if ((err?.status_code ?? 500) >= 500) logFailure('tus-s3', err) }
const tusServer = new Server({ path: '/files', datastore, onResponseError })
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
app.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null))
const handler = (request, reply) => {
  reply.hijack()
  tusServer.handle(request.raw, reply.raw)
}
const methods = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS']
app.route({ method: methods, url: '/files', exposeHeadRoute: false, handler })
app.route({ method: methods, url: '/files/*', exposeHeadRoute: false, handler })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
announce(new URL(address).port)
onStop(() => app.close())
