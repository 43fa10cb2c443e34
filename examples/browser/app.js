// The Uppy page's script. The example server bundles it with esbuild (browsers cannot resolve
// '@uppy/core' on their own) and serves the result as /assets/app.js and /assets/app.css.
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'
import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'

// ?chunkSize=262144 sends the file in 256 KiB PATCH requests. On localhost a whole file goes up
// in the blink of an eye; small chunks leave time to watch the progress and press pause.
const params = new URLSearchParams(window.location.search)
const chunkSize = Number(params.get('chunkSize') ?? 5 * 1024 * 1024)

const uppy = new Uppy({ autoProceed: false })
  .use(Dashboard, {
    inline: true,
    target: '#uppy',
    height: 420,
    showLinkToFileUploadResult: true,
    proudlyDisplayPoweredByUppy: false,
    note: 'Pause, reload the page, add the same file again: the upload goes on where it stopped.'
  })
  .use(Tus, {
    endpoint: new URL('/files/', window.location.href).href,
    chunkSize,
    retryDelays: [0, 1000, 3000, 5000],
    // Resuming across reloads: tus-js-client keeps each upload's URL in localStorage, keyed by
    // the file's fingerprint (name, type, size, last modified). When the same file is added
    // again after a reload, it asks the server for the offset (HEAD) and sends only the rest.
    // (On by default; spelled out because it is what this page is about.)
    storeFingerprintForResuming: true,
    // Forget a finished upload, so the same file added later is uploaded anew.
    removeFingerprintOnSuccess: true
  })

// A plain status line: what a person reads, and what the browser test waits on.
const status = document.getElementById('status')
function show (state, text, fields = {}) {
  status.dataset.state = state
  for (const [key, value] of Object.entries(fields)) status.dataset[key] = String(value)
  status.textContent = text
}
const uploadUrl = (file) => uppy.getFile(file.id)?.tus?.uploadUrl ?? ''

uppy.on('upload-start', () => show('uploading', 'Uploading…', { percent: 0 }))
uppy.on('upload-progress', (file, { bytesUploaded, bytesTotal }) => {
  const percent = Math.floor((bytesUploaded / bytesTotal) * 100)
  show('uploading', `Uploading ${file.name}: ${percent}%`, { percent, url: uploadUrl(file) })
})
uppy.on('pause-all', () => show('paused', `Paused at ${status.dataset.percent ?? 0}%`))
uppy.on('upload-pause', (file, isPaused) => {
  if (isPaused) show('paused', `Paused at ${status.dataset.percent ?? 0}%`)
})
uppy.on('resume-all', () => show('uploading', 'Resuming…'))
uppy.on('upload-error', (file, error) => show('error', `Failed: ${error.message}`))
uppy.on('upload-success', (file, response) => {
  show('complete', `Finished: ${response.uploadURL}`, { percent: 100, url: response.uploadURL })
})

// For the browser console and tests.
window.uppy = uppy
