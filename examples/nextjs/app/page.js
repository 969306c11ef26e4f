"use client";
// sam2enc in a Next.js app (app router, static export): a bundle and its photo, SAM2's decoder in the
// browser, a mask per prompt. Files (in public/, or anywhere with ?decoder=URL&bundle=FOLDER&photo=URL):
// models/decoder.onnx with its model.json, bundle/manifest.json + bundle/embedding.bin, and the photo the
// bundle was encoded from. The decoder runs in the browser only: everything loads in an effect.
import { useEffect, useRef, useState } from "react";
import { Segmenter } from "./segmenter.js";

export default function Page() {
  const canvas = useRef(null);
  const [status, setStatus] = useState({ text: "Loading the decoder and the bundle…", state: "loading" });
  const [download, setDownload] = useState(null);
  const segmenter = useRef(null);

  useEffect(() => {
    const params = new URLSearchParams(location.search);
    const at = (name, fallback) => new URL(params.get(name) ?? fallback, location.href);
    const opened = Segmenter.open({
      canvas: canvas.current,
      decoder: at("decoder", "models/decoder.onnx"),
      bundle: at("bundle", "bundle/"),
      photo: params.get("photo") ? at("photo") : null,
      onMask: setDownload,
      onError: (message) => setStatus({ text: `Decoder: ${message}`, state: "error" }),
    });
    opened.then(
      (s) => {
        segmenter.current = s;
        window.sam2encExample = s.hook();
        setStatus({ text: `Ready (${s.decoder.backend}): click the photo.`, state: "ready" });
      },
      (err) => setStatus({ text: `Could not start: ${err.message}`, state: "error" }),
    );
    return () => { opened.then((s) => s.dispose(), () => {}); };
  }, []);

  return (
    <main>
      <p id="status" data-state={status.state}>{status.text}</p>
      <canvas id="photo" ref={canvas} width={0} height={0} style={{ maxWidth: "100%", touchAction: "none", cursor: "crosshair" }} />
      <p>
        Click: include · Shift-click or right-click: exclude · drag: a box ·{" "}
        <button id="clear" type="button" onClick={() => segmenter.current?.clear()}>Clear</button>{" "}
        <a id="download" download="mask.png" href={download ?? undefined}>Download mask</a>
      </p>
    </main>
  );
}
