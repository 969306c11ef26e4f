// An encode on Replicate, from Encode to a live bundle (or a failure, or Cancel). DOM-free (tested with
// `node --test tests/js/page_encode_job.test.mjs`): the calls to Replicate (app/replicate.js), the bundle
// check, the clock and the status lines are passed in.
//
// One job at a time, `S.encode`: a new Encode, Cancel or another photo abandons the running one (its
// upload or polling aborted, its prediction canceled on Replicate once). A job that is no longer
// `S.encode` is dead: whatever it still hears (files, an error, the abort's own AbortError) is not news.
// While it runs, a ticker says how far it is; the page's status line follows only while no photo is
// live: a live photo keeps its line, its bundle and its prompts until the new bundle has been checked.
//
// `deps`: encodeOnReplicate(file, version, options) and cancelPrediction(id) (replicate.js, the token
// bound by the page); check(files, job) → the checked bundle; encoded(job, bundle, saved) makes it live;
// remote(text, error) the encode box's line; status(text, kind) the page's; changed() after every change
// of S.encode (the buttons follow); now() ms; every(fn, ms) / stop(handle) the ticker.
export const TICK_MS = 200;

export function createEncodeJobs(S, deps) {
  const { now = () => performance.now(), every = setInterval, stop = clearInterval } = deps;
  const seconds = (job) => ((now() - job.start) / 1000).toFixed(1);

  /** The running job ends without news; returns whether there was one. */
  function abandon(cancelRemote) {
    const job = S.encode;
    if (!job) return false;
    S.encode = null;
    job.abort.abort();
    stop(job.ticker);
    if (cancelRemote && job.id) deps.cancelPrediction(job.id);
    return true;
  }

  /** Encode `file` (decoded as `photo`) with `options` ({ version, token, pollMs, wait }); resolves when
   * the job is over, whichever way. The caller abandons any running job first. */
  async function start(file, photo, options) {
    const job = { id: null, status: "uploading", start: now(), abort: new AbortController(), note: "", file, photo };
    S.encode = job;
    const tick = () => {
      deps.remote(`Encoding on Replicate: ${job.status}${job.note ? ` (${job.note})` : ""} · ${seconds(job)} s`);
      if (!S.ready) deps.status(`Encoding on Replicate: ${job.status} · ${seconds(job)} s`, "encoding"); // a live photo keeps its line
    };
    job.ticker = every(tick, TICK_MS);
    tick();
    deps.changed();
    const live = () => S.encode === job;
    const { version, ...rest } = options;
    try {
      const files = await deps.encodeOnReplicate(file, version, {
        ...rest, signal: job.abort.signal, live,
        status: (text) => { job.status = text; }, note: (text) => { job.note = text; }, prediction: (id) => { job.id = id; },
      });
      if (!files || !live()) return;
      const saved = { manifest: files.manifest, payload: files.payload.slice(0) };
      const bundle = await deps.check(files, job);
      if (!live()) return;
      stop(job.ticker);
      S.encode = null;
      deps.remote(`Encoded in ${seconds(job)} s (prediction ${job.id}).`);
      deps.encoded(job, bundle, saved); // only now does the previous photo, bundle and prompts end
      deps.changed();
    } catch (err) {
      if (S.encode !== job) return; // canceled or replaced: its failure is not news
      stop(job.ticker);
      S.encode = null;
      if (err.name !== "AbortError") {
        deps.remote(String(err.message || err), true);
        const kept = S.ready ? ` ${S.fileName ?? "The open photo"} and its prompts are as they were.` : "";
        deps.status(`${String(err.message || err)}${kept}`, "error");
      }
      deps.changed();
    }
  }

  return { start, abandon };
}
