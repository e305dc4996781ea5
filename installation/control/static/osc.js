// OSC 1.0 on a WebSocket, as OSCQuery streams it: binary frames, one message (or a bundle) each.
"use strict";
const OSC = (() => {
  const enc = new TextEncoder(), dec = new TextDecoder();
  const pad = (n) => (n + 4) & ~3;  // a string and its terminating zero, padded to four bytes

  function str(s) {
    const b = enc.encode(s), out = new Uint8Array(pad(b.length));
    out.set(b);
    return out;
  }

  // args: [[tag, value], ...] with tag one of f i s T F
  function message(address, args = []) {
    const parts = [str(address), str("," + args.map(([t]) => t).join(""))];
    for (const [t, v] of args) {
      if (t === "f" || t === "i") {
        const b = new DataView(new ArrayBuffer(4));
        t === "f" ? b.setFloat32(0, v) : b.setInt32(0, v);
        parts.push(new Uint8Array(b.buffer));
      } else if (t === "s") {
        parts.push(str(String(v)));
      }
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  }

  function readStr(view, i) {
    let end = i;
    while (end < view.byteLength && view.getUint8(end) !== 0) end++;
    return [dec.decode(new Uint8Array(view.buffer, view.byteOffset + i, end - i)), pad(end - i) + i];
  }

  // -> [{address, args}] (bundles flattened)
  function parse(buffer) {
    const view = buffer instanceof DataView ? buffer : new DataView(buffer);
    let [address, i] = readStr(view, 0);
    if (address === "#bundle") {
      const out = [];
      i = 16;
      while (i + 4 <= view.byteLength) {
        const n = view.getInt32(i);
        out.push(...parse(new DataView(view.buffer, view.byteOffset + i + 4, n)));
        i += 4 + n;
      }
      return out;
    }
    let tags = ",";
    if (i < view.byteLength) [tags, i] = readStr(view, i);
    const args = [];
    for (const t of tags.slice(1)) {
      if (t === "f") { args.push(view.getFloat32(i)); i += 4; }
      else if (t === "i") { args.push(view.getInt32(i)); i += 4; }
      else if (t === "d") { args.push(view.getFloat64(i)); i += 8; }
      else if (t === "h") { args.push(Number(view.getBigInt64(i))); i += 8; }
      else if (t === "s") { let s; [s, i] = readStr(view, i); args.push(s); }
      else if (t === "T") args.push(true);
      else if (t === "F") args.push(false);
    }
    return [{address, args}];
  }

  return {message, parse};
})();
