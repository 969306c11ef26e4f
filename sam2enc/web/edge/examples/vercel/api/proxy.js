// Vercel: the hosted proxy as one Vercel Function (Node.js runtime, the Fetch-API signature). Copy this
// file to api/proxy.js, and ../vercel.json's rewrite into the project's vercel.json, in a project that
// depends on this package; set ALLOWED_ORIGINS (and REPLICATE_API_BASE, CANCEL_AFTER if wanted) in the
// project's environment variables.
//
// One file for every /api/* path: outside Next.js a dynamic file name (api/[...path].js) matches one
// path segment only, so the rewrite sends /api/predictions/<id>/cancel here with the URL the browser
// asked for (plus a ?path= query the handler ignores).
//
// What Vercel allows (its documented limits): a request body up to 4.5 MB, streaming or not, so a photo
// over that is refused by Vercel itself (413) before this function runs and the page says so; a
// streamed response has no size limit, and the handler streams every answer, so the 8 MiB bundle
// (embedding.bin) comes down.
import handler from "sam2enc/proxy";

export default {
  fetch: (request) => handler.fetch(request, process.env),
};
