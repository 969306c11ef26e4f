// COCO annotation without the DOM: masks as pycocotools RLE, and one photo's or one dataset's document,
// built exactly as sam2enc/coco.py builds it so that `sam2enc decode BUNDLE --prompts export.json --coco
// OUT.json` (a dataset: `decode BUNDLES_DIR`) remakes the page's export. Masks are the module's own:
// row-major, one byte per pixel, nonzero = inside.
//
// RLE as pycocotools writes it (pycocotools.mask.encode): pixels read column-major, counts alternate
// runs of 0 and 1 starting with the (possibly empty) run of 0s; the string stores each count (from the
// fourth on, minus the count two before) in 5-bit groups, least significant first, each + 48 as one
// ASCII character, 0x20 = "more groups follow", 0x10 of the last group = negative. Arithmetic is done on
// doubles (floor division, not `>>`), so counts beyond 2^31 stay exact.

function checkMask(mask, width, height) {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 0 && height >= 0)) {
    throw new Error(`a mask's width and height are whole numbers, got ${width}×${height}.`);
  }
  if (mask.length !== width * height) throw new Error(`the mask has ${mask.length} pixels, not ${width}×${height}.`);
}

/**
 * Run lengths of a row-major mask read column-major, starting with the run of 0s.
 * @param {ArrayLike<number>} mask
 * @returns {number[]}
 */
export function rleCounts(mask, width, height) {
  checkMask(mask, width, height);
  const counts = [];
  let previous = false, run = 0;
  for (let x = 0; x < width; x++) {
    for (let i = x; i < width * height; i += width) {
      const inside = mask[i] !== 0;
      if (inside !== previous) {
        counts.push(run);
        run = 0;
        previous = inside;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

/** pycocotools' rleToString: counts → COCO's compact `counts` string. */
export function compressCounts(counts) {
  let text = "";
  for (let i = 0; i < counts.length; i++) {
    let x = i > 2 ? counts[i] - counts[i - 2] : counts[i];
    let more = true;
    while (more) {
      const c = x - 32 * Math.floor(x / 32); // x & 0x1f, also for negative x
      x = Math.floor(x / 32); // x >> 5, arithmetic
      more = c & 0x10 ? x !== -1 : x !== 0;
      text += String.fromCharCode(c + 48 + (more ? 0x20 : 0));
    }
  }
  return text;
}

/** pycocotools' rleFrString: COCO's `counts` string → counts. */
export function decompressCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      if (p >= text.length) throw new Error("the RLE counts string ends in the middle of a number.");
      const c = text.charCodeAt(p) - 48;
      if (!(c >= 0 && c < 64)) throw new Error(`the RLE counts string holds ${JSON.stringify(text[p])}, not a character pycocotools writes.`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = Boolean(c & 0x20);
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * A row-major mask → {size: [height, width], counts}, the bytes pycocotools writes.
 * @returns {{size: [number, number], counts: string}}
 */
export function rleEncode(mask, width, height) {
  return { size: [height, width], counts: compressCounts(rleCounts(mask, width, height)) };
}

/**
 * {size: [h, w], counts: string | number[]} → a row-major 0/255 mask.
 * @returns {{mask: Uint8Array, width: number, height: number}}
 */
export function rleDecode(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? decompressCounts(rle.counts) : rle.counts;
  const total = counts.reduce((sum, c) => sum + c, 0);
  if (total !== width * height || counts.some((c) => c < 0)) {
    throw new Error(`the RLE counts sum to ${total}, not the ${width}×${height} photo's ${width * height} pixels.`);
  }
  const mask = new Uint8Array(width * height);
  let at = 0;
  for (let r = 0; r < counts.length; r++) {
    if (r % 2 === 1) {
      for (let j = at; j < at + counts[r]; j++) mask[(j % height) * width + Math.floor(j / height)] = 255;
    }
    at += counts[r];
  }
  return { mask, width, height };
}

/** COCO's [x, y, width, height] of the mask's pixels; [0, 0, 0, 0] when empty (as pycocotools' toBbox). */
export function maskBbox(mask, width, height) {
  checkMask(mask, width, height);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] !== 0) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

/** The number of mask pixels. */
export function maskArea(mask) {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i] !== 0;
  return n;
}

/**
 * A dataset's COCO document: image i per photo, in order (photos without objects too), a category per
 * label in order of first use across the dataset, annotations 1..n in image order then object order,
 * each with its RLE, bbox, area, iscrowd 0 and its prompts under "sam2enc". A photo's `sha256` (hex, of
 * its bytes as uploaded: a bundle's source.sha256) goes to its image as "sam2enc": {sha256}; without
 * one the image has no "sam2enc" key. sam2enc/coco.py's coco_dataset builds the same document, and
 * `sam2enc decode BUNDLES_DIR --prompts dataset.json --coco OUT.json` remakes it.
 * @param {{fileName: string, width: number, height: number, sha256?: string | null,
 *          objects?: {label?: string, mask: ArrayLike<number>, points?: number[][], box?: number[] | null}[]}[]} photos
 */
export function cocoDataset(photos) {
  const categories = new Map();
  const images = [];
  const annotations = [];
  photos.forEach(({ fileName, width, height, sha256, objects = [] }, p) => {
    const image = { id: p + 1, file_name: fileName, width, height };
    if (sha256 != null) image.sam2enc = { sha256 };
    images.push(image);
    objects.forEach((object, i) => {
      const label = object.label ?? "object";
      if (typeof label !== "string" || !label.trim()) throw new Error(`${fileName}: object ${i + 1}'s label must be a non-empty string.`);
      if (!categories.has(label)) categories.set(label, categories.size + 1);
      if (object.mask.length !== width * height) {
        throw new Error(`${fileName}: object ${i + 1}'s mask has ${object.mask.length} pixels, the photo ${width}×${height}.`);
      }
      annotations.push({
        id: annotations.length + 1,
        image_id: image.id,
        category_id: categories.get(label),
        segmentation: rleEncode(object.mask, width, height),
        bbox: maskBbox(object.mask, width, height),
        area: maskArea(object.mask),
        iscrowd: 0,
        sam2enc: {
          points: (object.points ?? []).map(([x, y, l]) => [x, y, l]),
          box: object.box ? [...object.box] : null,
        },
      });
    });
  });
  return {
    images,
    categories: [...categories].map(([name, id]) => ({ id, name, supercategory: "" })),
    annotations,
  };
}

/**
 * One photo's COCO document: cocoDataset of that photo alone (image 1, no sha256), so the same document
 * a dataset of one photo gives.
 * @param {{fileName: string, width: number, height: number,
 *          objects: {label?: string, mask: ArrayLike<number>, points?: number[][], box?: number[] | null}[]}} photo
 */
export function cocoDocument({ fileName, width, height, objects }) {
  return cocoDataset([{ fileName, width, height, objects }]);
}
