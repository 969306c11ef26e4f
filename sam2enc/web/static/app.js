// The page's entry: the page itself lives in app/ (main.js wires the DOM; state.js, prompts.js, draw.js,
// files.js, replicate.js do the rest), the decoder in lib/ (the sam2enc module), run by worker.js.
export { parseModel, refusal } from "./app/replicate.js";
import "./app/main.js";
