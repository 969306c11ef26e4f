// Pointer → prompts in pixels of the photo: a click adds a point (Shift or the right button: exclude),
// a drag of more than 4 px sets the box. `changed()` is called after each change.
export function promptsFromPointer(canvas, prompts, changed) {
  const pixel = (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
    return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
  };
  let down = null;
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    down = { at: pixel(event), exclude: event.shiftKey || event.button === 2 };
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!down) return;
    const [x0, y0] = down.at, [x1, y1] = pixel(event);
    if (Math.hypot(x1 - x0, y1 - y0) > 4) {
      prompts.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    } else {
      prompts.points.push([x0, y0, down.exclude ? 0 : 1]);
    }
    down = null;
    changed();
  });
}
