// The build works from any folder of a host (relative asset URLs). onnxruntime-web stays out of the dev
// server's pre-bundling, so that it finds its .wasm beside its own module.
export default {
  base: "./",
  optimizeDeps: { exclude: ["onnxruntime-web"] },
};
