/**
 * `addF(i, x)`: `buf[i] += x` on a buffer bound as `array<atomic<u32>>` holding f32 bits. WGSL has
 * no float atomics, so the add is a compare-exchange loop (an exchange that lost a race retries
 * with the value it saw). Adding 0 is skipped. `fn` names the function (one per buffer when a kernel
 * adds into several).
 */
export function atomicAddF32(buf: string, fn = 'addF'): string {
  return `fn ${fn}(i: u32, x: f32) {
  if (x == 0.0) { return; }
  var old = atomicLoad(&${buf}[i]);
  loop {
    let r = atomicCompareExchangeWeak(&${buf}[i], old, bitcast<u32>(bitcast<f32>(old) + x));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}`;
}
