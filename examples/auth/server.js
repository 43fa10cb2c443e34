// Per-user uploads with the host app's own Fastify hooks: `node examples/auth/server.js`.
// Every request needs `Authorization: Bearer <token>`; an upload belongs to the
// user who created it, and other users get 404 for it (its existence is not revealed).
import Fastify from 'fastify'
import tus from 'fastify-tus'

// Stand-in for a real token check (JWT, session lookup, ...).
const USERS_BY_TOKEN = new Map([['alice-token', 'alice'], ['bob-token', 'bob']])

const app = Fastify({ logger: true })

await app.register(async function uploads (scope) {
  scope.decorateRequest('user', null)

  // Authentication: every tus request in this scope, before the plugin sees it.
  scope.addHook('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS') return // CORS preflight and discovery stay open
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
    const user = token === undefined ? undefined : USERS_BY_TOKEN.get(token)
    if (user === undefined) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').type('text/plain').send('missing or unknown bearer token')
    }
    request.user = user
  })

  // Authorisation: an upload URL answers only to its owner.
  scope.addHook('preHandler', async (request, reply) => {
    const id = request.params?.id
    if (id === undefined) return
    const upload = await scope.tus.get(id)
    if (upload !== undefined && upload.metadata.owner !== request.user) {
      return reply.code(404).type('text/plain').send('upload not found')
    }
  })

  await scope.register(tus, {
    prefix: '/files',
    uploadDir: process.env.UPLOAD_DIR ?? './uploads',
    db: process.env.DB_PATH ?? './uploads.db',
    // The owner is recorded by the server, never taken from client metadata.
    onCreate: ({ request, upload }) => ({ metadata: { ...upload.metadata, owner: request.user } })
  })

  // The user's own uploads, listed through the decorator.
  scope.get('/my-uploads', async (request) => {
    const all = await scope.tus.list({ limit: 1000 })
    return all.filter((u) => u.metadata.owner === request.user).map((u) => ({ id: u.id, offset: u.offset, length: u.length }))
  })
})

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })
