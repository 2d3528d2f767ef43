/** Hostile inputs shared by the fuzz tests (core-level and end to end). */
import fc from 'fast-check';

/** Strings heavy in what breaks parsers and headers: controls, lone surrogates, quotes, brackets. */
export const anyString = (maxLength = 40) =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({
      unit: fc.constantFrom('\r', '\n', '\0', '\t', '\u2028', '\uFFFD', '\uD800', '\uDFFF', '\u{1F600}', '"', '\\', ' ', 'a', '{', '[', '\u0085', '\u00A0'),
      maxLength,
    }),
  );

/** Non-blank text that is not a JSON object: invalid JSON, or JSON of another kind. */
export const notJsonObjectText = (maxLength = 60) =>
  fc.oneof(
    anyString(maxLength).filter((s) => {
      if (s.trim() === '') return false;
      try {
        const v: unknown = JSON.parse(s);
        return typeof v !== 'object' || v === null || Array.isArray(v);
      } catch {
        return true;
      }
    }),
    fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => JSON.stringify(v)),
  );
