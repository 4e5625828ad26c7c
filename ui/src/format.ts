// How the screens write the engine's values.

/** The last part of a path, whichever separator the platform uses. */
export const fileName = (p: string) => p.split(/[\\/]/).pop() ?? p;

/** A model's `[model]` settings as one line: width, depth, heads, image and patch sizes. */
export const modelShape = (m: Record<string, unknown> | null | undefined) =>
  m && m.hidden != null
    ? `D=${m.hidden} L=${m.layers} H=${m.heads} · ${m.image_size} px / ${m.patch_size} px patches`
    : '—';
