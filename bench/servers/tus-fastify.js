// @tus/server with @tus/file-store mounted in Fastify the usual way (serveTus()
// in common.js: a parser that hands the body stream through untouched, and
// routes that give the raw request and response to tusServer.handle after
// reply.hijack()).
import { FileStore } from '@tus/file-store'
import { serveTus, uploadDir } from './common.js'

await serveTus('tus-fastify', new FileStore({ directory: uploadDir() }))
