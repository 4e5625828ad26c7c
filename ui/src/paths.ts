/** The last part of a path, whichever separator the platform uses. */
export const fileName = (p: string) => p.split(/[\\/]/).pop() ?? p;
