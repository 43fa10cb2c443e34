// examples/browser in a real browser. Headless Chromium uploads a file through the Uppy page,
// the Dashboard's Pause button stops it part-way, the page is reloaded, the same file is added
// again, and the upload goes on from where the server stopped, in the same upload. The plain
// tus-js-client page is driven through pause and resume too.
// Chromium comes from Debian's package (.ci/run installs it); without it the file is skipped.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page, type Route } from 'playwright-core'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, send } from './helpers/http.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))
const CHUNK = 256 << 10 // 256 KiB per PATCH (the pages' ?chunkSize=)

interface TusRequest { phase: string; method: string; url: string; offset: number | undefined }

interface Session {
  page: Page
  origin: string
  uploadDir: string
  /** Every tus request the page made, tagged with the phase set at the time. */
  requests: TusRequest[]
  setPhase: (phase: string) => void
  /** The URL of the upload the page created (from the POST's Location). */
  uploadUrl: () => string | undefined
  /** Resolves when the page sends the PATCH starting at `at` or later; that request is held. */
  holdPatchAt: (at: number) => Promise<void>
  release: () => void
  pageErrors: string[]
}

/** The example server in a temp dir, Chromium, and one page watching the tus requests. */
async function session (t: Test): Promise<Session> {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const { origin } = await spawnServer(t, ['examples/browser/server.js'], {
    PORT: '0', UPLOAD_DIR: uploadDir, DB_PATH: join(dir, 'uploads.db')
  })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 900, height: 760 } })
  page.setDefaultTimeout(30_000)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))

  let phase = 'start'
  let uploadUrl: string | undefined
  const requests: TusRequest[] = []
  const isTus = (url: string): boolean => url.startsWith(`${origin}/files`)
  page.on('request', (request) => {
    if (!isTus(request.url())) return
    const offset = request.headers()['upload-offset']
    requests.push({ phase, method: request.method(), url: request.url(), offset: offset === undefined ? undefined : Number(offset) })
  })
  page.on('response', (response) => {
    if (response.request().method() === 'POST' && isTus(response.url()) && response.status() === 201) {
      uploadUrl = new URL(response.headers().location!, response.url()).href
    }
  })

  // On localhost a file of a few MiB goes up in well under a second, faster than a test can
  // click. So the PATCH that starts at the pause point is held in the browser (never sent)
  // until the test has pressed Pause: the pause lands mid-upload however loaded the machine
  // is, and the server then holds exactly the bytes before that point.
  let holdAt = Infinity
  let onHeld = (): void => {}
  await page.route(`${origin}/files/**`, async (route: Route) => {
    const request = route.request()
    if (request.method() === 'PATCH' && Number(request.headers()['upload-offset']) >= holdAt) {
      onHeld()
      return // left pending: the page aborts this request when paused
    }
    await route.continue()
  })
  const holdPatchAt = async (at: number): Promise<void> => {
    holdAt = at
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no PATCH at offset ${at} within 30 s`)), 30_000)
      onHeld = () => { clearTimeout(timer); resolve() }
    })
  }
  return {
    page, origin, uploadDir, requests, pageErrors, holdPatchAt,
    setPhase: (next) => { phase = next },
    uploadUrl: () => uploadUrl,
    release: () => { holdAt = Infinity }
  }
}

/** A file on disk (not a buffer), so its lastModified, part of the tus fingerprint, stays the same. */
function randomFile (t: Test, size: number): { path: string; data: Buffer } {
  const data = randomBytes(size)
  const path = join(tempDir(t), 'random.bin')
  writeFileSync(path, data)
  return { path, data }
}

/** Wait (bounded) for the page's status line (see examples/browser/index.html) to reach `state`. */
async function statusState (page: Page, state: string, timeout = 30_000): Promise<void> {
  await page.locator(`#status[data-state="${state}"]`).waitFor({ state: 'attached', timeout })
}

/** The status line's percent once it is at least `min` (bounded wait). */
async function percentAtLeast (page: Page, min: number): Promise<number> {
  await page.waitForFunction(`Number(document.getElementById('status').dataset.percent) >= ${min}`, undefined, { timeout: 30_000 })
  return Number(await page.locator('#status').getAttribute('data-percent'))
}

/** tus-js-client's localStorage entries (fingerprint -> upload URL). A string to evaluate: the
 *  tests are type-checked without the DOM library. */
async function tusStorageKeys (page: Page): Promise<string[]> {
  return await page.evaluate('Object.keys(window.localStorage).filter((key) => key.startsWith("tus::"))') as string[]
}

/** The upload's offset as the server reports it (HEAD). */
async function serverOffset (url: string): Promise<number> {
  const head = await send('HEAD', url, { headers: TUS })
  if (head.status !== 200) throw new Error(`HEAD ${url}: ${head.status}`)
  return Number(head.headers['upload-offset'])
}

async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, name)
  rmSync(path, { force: true })
  await page.screenshot({ path, fullPage: true })
  return path
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `browser test skipped: ${CHROMIUM} not found`)
} else {
  t.test('Uppy page: upload, pause, reload, resume in the same upload', { timeout: 120_000 }, async (t) => {
    const SIZE = 6 << 20
    const PAUSE_AT = 2 << 20 // a multiple of CHUNK
    const { page, origin, uploadDir, requests, setPhase, uploadUrl, holdPatchAt, release, pageErrors } = await session(t)
    const file = randomFile(t, SIZE)

    setPhase('before reload')
    await page.goto(`${origin}/?chunkSize=${CHUNK}`)
    await page.locator('input.uppy-Dashboard-input[type=file]').first().setInputFiles(file.path)
    const held = holdPatchAt(PAUSE_AT)
    await page.getByRole('button', { name: /^Upload 1 file/ }).click()

    // Past PAUSE_AT: the page shows the progress, then the Dashboard's Pause button.
    await held
    const percent = await percentAtLeast(page, 30)
    t.ok(percent < 100, `progress shown before the pause (${percent}%)`)
    await page.getByRole('button', { name: 'Pause', exact: true }).click()
    await statusState(page, 'paused')
    t.ok(await page.getByRole('button', { name: 'Resume', exact: true }).isVisible(), 'the Dashboard offers Resume')
    t.ok(statSync(await screenshot(page, 'browser-paused.png')).size > 0, 'screenshot of the paused page')
    release()

    const url = uploadUrl()
    if (url === undefined) throw new Error('the page created no upload')
    const id = url.slice(url.lastIndexOf('/') + 1)
    t.equal(await serverOffset(url), PAUSE_AT, 'the server holds the bytes sent before the pause')
    t.same(readdirSync(uploadDir), [id], 'one upload on disk')
    t.equal(statSync(join(uploadDir, id)).size, PAUSE_AT, 'its file holds that part, not the whole file')

    // Reload: Uppy's state is gone, the fingerprint -> upload URL entry in localStorage is not.
    setPhase('after reload')
    await page.reload()
    t.equal((await tusStorageKeys(page)).length, 1, 'the upload URL survived the reload in localStorage')
    t.equal(await page.locator('#status').getAttribute('data-state'), 'idle', 'the reloaded page starts afresh')

    // The same file again, and Upload: Uppy finds the earlier upload and resumes it.
    await page.locator('input.uppy-Dashboard-input[type=file]').first().setInputFiles(file.path)
    await page.getByRole('button', { name: /^Upload 1 file/ }).click()
    await statusState(page, 'complete', 60_000)
    t.equal(await page.locator('#status').getAttribute('data-url'), url, 'the page reports the same upload URL')

    // How it went on: no new upload; after the reload the page asked for the offset and sent
    // from there, so no byte before the pause was sent twice.
    t.equal(requests.filter((r) => r.method === 'POST').length, 1, 'one upload created (POST) in all')
    const resumed = requests.filter((r) => r.phase === 'after reload')
    t.equal(resumed[0]?.method, 'HEAD', 'after the reload the page first asks the server for the offset')
    const patches = resumed.filter((r) => r.method === 'PATCH')
    t.equal(patches[0]?.offset, PAUSE_AT, 'the first PATCH after the reload starts at the paused offset')
    t.ok(patches.every((p) => p.url === url && p.offset! >= PAUSE_AT), `all ${patches.length} PATCH requests after the reload went to the same upload, past that offset`)

    // The stored bytes are the file's, byte for byte.
    t.equal(await serverOffset(url), SIZE, 'the server has the whole file')
    const download = await send('GET', url)
    t.equal(download.status, 200, 'GET the upload')
    t.ok(download.body.equals(file.data), 'the stored bytes equal the file')
    t.same(readdirSync(uploadDir), [id], 'still one upload on disk')
    t.same(await tusStorageKeys(page), [], 'the finished upload was forgotten in localStorage')

    const finished = await screenshot(page, 'browser-finished.png')
    t.ok(statSync(finished).size > 0, `screenshot of the finished page: ${finished}`)
    t.same(pageErrors, [], 'no uncaught errors in the page')
  })

  t.test('plain tus-js-client page: upload, pause, resume', { timeout: 120_000 }, async (t) => {
    const SIZE = 1 << 20
    const PAUSE_AT = 512 << 10 // a multiple of CHUNK
    const { page, origin, requests, setPhase, uploadUrl, holdPatchAt, release, pageErrors } = await session(t)
    const file = randomFile(t, SIZE)

    await page.goto(`${origin}/plain?chunkSize=${CHUNK}`)
    await page.locator('#file').setInputFiles(file.path)
    const held = holdPatchAt(PAUSE_AT)
    await page.getByRole('button', { name: 'Upload' }).click()
    await held
    t.ok(await percentAtLeast(page, 40) < 100, 'progress shown before the pause')
    await page.getByRole('button', { name: 'Pause' }).click()
    await statusState(page, 'paused')
    release()

    const url = uploadUrl()
    if (url === undefined) throw new Error('the page created no upload')
    t.equal(await serverOffset(url), PAUSE_AT, 'the server holds the bytes sent before the pause')

    setPhase('resumed')
    await page.getByRole('button', { name: 'Resume' }).click()
    await statusState(page, 'complete', 60_000)
    t.equal(await page.locator('#status').getAttribute('data-url'), url, 'the page reports the upload URL')
    t.equal(requests.filter((r) => r.method === 'POST').length, 1, 'one upload created (POST) in all')
    const patches = requests.filter((r) => r.phase === 'resumed' && r.method === 'PATCH')
    t.equal(patches[0]?.offset, PAUSE_AT, 'the first PATCH after Resume starts at the paused offset')
    const download = await send('GET', url)
    t.ok(download.body.equals(file.data), 'the stored bytes equal the file')
    t.same(pageErrors, [], 'no uncaught errors in the page')
  })
}
