// @tus/server with @tus/file-store mounted in Fastify the usual way: a parser
// that hands the body stream through untouched, and routes that give the raw
// request and response to tusServer.handle after reply.hijack().
import Fastify from 'fastify'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'
import { announce, onStop, uploadDir } from './common.js'

const tusServer = new Server({ path: '/files', datastore: new FileStore({ directory: uploadDir() }) })
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
