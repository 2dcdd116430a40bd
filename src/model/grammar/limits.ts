/**
 * Named bounds of the grammar engine. Each is checked before anything is sized from it, so a hostile grammar or
 * schema gets a GrammarError("limit") instead of a hang or a huge allocation.
 */

/** Longest GBNF text accepted, in UTF-16 units (llama.cpp's JSON grammar is ~1 kB; compiled schemas stay far below). */
export const MAX_GRAMMAR_LENGTH = 1 << 20;
/** Most rules after lowering (named rules plus the auxiliary rules groups and repetitions create). */
export const MAX_RULES = 1 << 16;
/** Most grammar elements (bytes sets, rule references, alternative ends) after lowering. */
export const MAX_ELEMENTS = 1 << 20;
/** Deepest nesting of parentheses in GBNF and of regular-expression groups in a schema pattern. */
export const MAX_NESTING = 64;
/** Largest bound in a repetition `{m,n}` (llama.cpp's parser stops at 2000 too). */
export const MAX_REPETITION = 2000;
/** Most live stack nodes a compiled grammar may intern (shared by all its matchers). */
export const MAX_STACK_NODES = 1 << 22;
/** Most stacks in one matcher state (an ambiguous grammar can multiply them). */
export const MAX_STACKS = 1 << 12;
/** Most nodes one closure may visit (expanding rules at the top of a stack until a byte set is on top). */
export const MAX_CLOSURE_WORK = 1 << 16;
/** Most distinct stack sets interned; beyond it the transition memo is cleared and, if still full, an error. */
export const MAX_STACK_SETS = 1 << 20;
/** Stack sets given a dense 256-entry transition row (1 KiB each); later sets use the transition memo. */
export const MAX_DENSE_SETS = 1 << 14;
/** Entries of the byte-transition memo before it is cleared. */
export const MAX_TRANSITIONS = 1 << 21;
/** Token masks kept per compiled grammar (least recently used dropped first): 16 KiB each on a 128k vocabulary. */
export const MAX_MASK_CACHE = 256;
/** Per-position token classifications kept per compiled grammar before the table is cleared. */
export const MAX_POSITION_CLASSES = 1024;
/** Deepest JSON Schema nesting the compiler follows (objects, arrays, anyOf, $ref chains). */
export const MAX_SCHEMA_DEPTH = 64;
/** Most schema nodes (sub-schemas, enum values and properties together) one schema may hold. */
export const MAX_SCHEMA_NODES = 1 << 14;
/** Most digits of an integer the schema compiler emits (llama.cpp's 16; beyond, JSON numbers lose precision). */
export const MAX_INTEGER_DIGITS = 16;
/** Longest token, in bytes, the mask walker handles (real vocabularies stay below 256). */
export const MAX_TOKEN_BYTES = 4096;
