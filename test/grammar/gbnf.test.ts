/**
 * GBNF: our own equivalents of llama.cpp's grammars/ folder (arithmetic, JSON, lists, chess moves), accepted or
 * rejected on sample strings as llama.cpp decides (a string matches when every byte is accepted and some stack
 * is empty at the end); llama.cpp's own integration-test cases for quantifiers, `.` and unicode; and grammars
 * llama.cpp refuses (left recursion, missing rules) plus hostile ones, refused with typed errors.
 */
import { describe, expect, it } from "vitest";
import { compileGbnf, GrammarError, MAX_GRAMMAR_LENGTH, MAX_NESTING, MAX_REPETITION, parseGbnf } from "../../src/model/grammar/index.js";

/** Arithmetic: equations "expr = term" per line (llama.cpp's arithmetic.gbnf accepts the same language). */
const ARITHMETIC = String.raw`
root    ::= (equation "\n")+
equation ::= sum "=" sp operand          # left side, then the result
sum     ::= operand ([-+*/] sp operand)*
operand ::= (name | digits | "(" sp sum ")") sp
name    ::= [a-z] [a-z0-9_]*
digits  ::= [0-9]+
sp      ::= [ \t\n]*
`;

/** JSON values (the language of llama.cpp's json.gbnf: objects at the root, 16-digit numbers, optional space). */
const JSON_GRAMMAR = String.raw`
root   ::= obj
value  ::= obj | arr | str | num | ("true" | "false" | "null") space
obj    ::= "{" space ( str ":" space value ("," space str ":" space value)* )? "}" space
arr    ::= "[" space ( value ("," space value)* )? "]" space
str    ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt/] | "u" [0-9a-fA-F]{4}) )* "\"" space
num    ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? space
space  ::= | " " | "\n" [ \t]{0,20}
`;

/** Lists: one or more "- item" lines, items without line breaks (llama.cpp's list.gbnf). */
const LIST = String.raw`
root ::= entry+
entry ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
`;

/** Chess moves in PGN, first move numbered "1. " (llama.cpp's chess.gbnf). */
const CHESS = String.raw`
root    ::= "1. " ply " " ply "\n" (turn ". " ply " " ply "\n")+
turn    ::= [1-9] [0-9]?
ply     ::= (pawn | piece | castle) [+#]?
piece   ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
pawn    ::= ([a-h] "x")? [a-h] [1-8] ("=" [NBKQR])?
castle  ::= "O-O" "-O"?
`;

function table(name: string, grammar: string, pass: string[], fail: string[]): void {
  describe(name, () => {
    const g = compileGbnf(grammar);
    for (const s of pass) {
      it(`should accept ${JSON.stringify(s)}`, () => expect(g.accepts(s)).toBe(true));
    }
    for (const s of fail) {
      it(`should reject ${JSON.stringify(s)}`, () => expect(g.accepts(s)).toBe(false));
    }
  });
}

table("arithmetic", ARITHMETIC, ["1+2=3\n", "x * (y + 2) = z\n", "a=1\nb_2 / 4 = c\n", "( 10 - 2 ) = 8 \n"], ["1+2=3", "=3\n", "1++2=3\n", "(1+2=3\n", "X=1\n", "1+2=\n"]);
table(
  "json",
  JSON_GRAMMAR,
  ['{}', '{"a": 1}', '{"a": [1, 2.5e3, -0, true, null, "x"]}', '{"nested": {"deep": {"s": "\\u00e9\\n"}}}', '{ "k" : "ünïcödé 🔵" }', '{"n": 1234567890123456}'],
  ['[]', '"x"', '{"a": 01}', '{"a": }', '{"a": 1,}', "{'a': 1}", '{"a": "\x01"}', '{"n": 12345678901234567}', '{"a": 1} x'],
);
table("list", LIST, ["- milk\n", "- milk\n- eggs and ham\n", "- ünïcödé ✅\n"], ["", "- \n", "- milk", "* milk\n", "- a\u2028b\n", "- a\rb\n"]);
table(
  "chess",
  CHESS,
  ["1. e4 e5\n2. Nf3 Nc6\n", "1. d4 d5\n2. c4 dxc4\n3. e3 b5\n4. a4 c6\n5. axb5 cxb5\n6. Qf3 O-O-O\n", "1. e4 e5\n2. Qh5 Ke7\n3. Qxe5# Kd6\n", "1. e4 e5\n10. e8=Q Kxe8\n"],
  ["1. e4 e5\n", "1. e9 e5\n2. Nf3 Nc6\n", "1. e4 e5\n0. Nf3 Nc6\n", "2. e4 e5\n3. Nf3 Nc6\n", "1. e4  e5\n2. Nf3 Nc6\n", "1. e4 e5\n2. Zf3 Nc6\n"],
);

// llama.cpp's tests/test-grammar-integration.cpp cases (grammar and strings as there).
table("medium complexity (llama.cpp)", String.raw`
root ::= expression
expression ::= term ws (("+"|"-") ws term)*
term ::= factor ws (("*"|"/") ws factor)*
factor ::= number | variable | "(" expression ")" | function-call
number ::= [0-9]+
variable ::= [a-zA-Z_][a-zA-Z0-9_]*
function-call ::= variable ws "(" (expression ("," ws expression)*)? ")"
ws ::= [ \t\n\r]?`,
  ["42", "1*2*3*4*5", "x", "x+10", "(a+b)*(c-d)", "func()", "func(x,y+2)", "f(g(x),h(y,z))", "x + 10", "a * (b + c) - d / e", "123+456*789-123/456+789*123-456/789+123*456-789/123+456*789-123/456+789*123-456"],
  ["+", "/ 3x", "x + + y", "a * / b", "func(,)", "func(x y)", "(a + b", "x + y)", "42 +", "func(", "f(g(x), h(y, z)"],
);
table("special characters (llama.cpp)", `root ::= ... "abc" ...`, ["abcabcabc", "aaaabcccc", "🔵🟠✅abc❌🟠🔵"], ["aaabcccc", "aaaaabcccc", "aaaabccc", "aaaabccccc", "🔵🟠✅❌abc❌✅🟠🔵", "🔵🟠abc🟠🔵"]);
table("* quantifier", `root ::= "a"*`, ["", "a", "aaaaa"], ["b", "ab", "aab", "ba"]);
table("+ quantifier", `root ::= "a"+`, ["a", "aaaaa"], ["", "b", "ab", "ba"]);
table("? quantifier", `root ::= "a"?`, ["", "a"], ["b", "ab", "aa", "ba"]);
table("mixed quantifiers", "root ::= cons+ vowel* cons? (vowel cons)*\nvowel ::= [aeiouy]\ncons ::= [bcdfghjklmnpqrstvwxyz]", ["yes", "no", "noyes", "crwth", "four", "bryyyy"], ["yess", "yesno", "forty", "catyyy"]);
table("exact repetition", "root ::= [ab]{4}", ["aaaa", "bbbb", "abab"], ["a", "b", "aaaaa"]);
table("min repetition", "root ::= [ab]{4,}", ["aaaa", "aaaaab", "bbbb", "ababab"], ["", "aba"]);
table("max repetition", "root ::= [ab]{0,4}", ["", "a", "aa", "aaa", "aaab"], ["aaaaa"]);
table("min/max repetition", `root ::= ("0x" [A-F0-9]{2} " "?){3,5}`, ["0xFF 0x12 0xAB", "0xFF 0x12 0xAB 0x00 0x00"], ["", "0xFF", "0xFF 0x12", "0xFF 0x12 0xAB 0x00 0x00 0x00"]);
table("nullable star (llama.cpp's 'segfault' case)", "root ::= ( [x]* )*", ["", "x", "xx"], ["y", "yy"]);
table("escapes and unicode ranges", String.raw`root ::= "\x41\u00e9\U0001F535" [\u0400-\u04FF]+ [^\x00-\x7F]`, ["Aé🔵Жж€", "Aé🔵д日"], ["Aé🔵", "Aé🔵Жa", "Ae🔵Жж€"]);

describe("partial UTF-8", () => {
  it("should accept a character split at every byte", () => {
    const g = compileGbnf("root ::= [\\u0400-\\u04FF] \"🔵\"");
    const bytes = new TextEncoder().encode("Ж🔵");
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(g.acceptsPrefix(bytes.subarray(0, cut))).toBe(true);
    }
    expect(g.accepts(bytes)).toBe(true);
    expect(g.acceptsPrefix(Uint8Array.of(0xd0, 0x7f))).toBe(false); // a lead byte followed by ASCII
    expect(g.acceptsPrefix(Uint8Array.of(0xed, 0xa0))).toBe(false); // a surrogate's encoding is never UTF-8
  });
});

function refuses(grammar: string, code: string): void {
  let caught: unknown;
  try {
    compileGbnf(grammar);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GrammarError);
  expect((caught as GrammarError).code).toBe(code);
  expect((caught as GrammarError).message).not.toMatch(/\/work|\.ts:\d|\n\s+at /);
}

describe("grammars llama.cpp refuses, and hostile grammars", () => {
  it("should refuse left recursion (llama.cpp's four cases)", () => {
    refuses(`root ::= "a" | root "a"`, "left-recursion");
    refuses(`root ::= asdf\nasdf ::= "a" | asdf "a"`, "left-recursion");
    refuses(`root ::= asdf\nasdf ::= "a" | foo "b"\nfoo ::= "c" | asdf "d" | "e"`, "left-recursion");
    refuses(`root ::= asdf\nasdf ::= "a" | foo "b"\nfoo ::= "c" | empty asdf "d" | "e"\nempty ::= "blah" | `, "left-recursion");
  });
  it("should refuse a missing root and undefined or duplicate rules", () => {
    refuses(`rot ::= "a"`, "no-root");
    refuses(`root ::= expr\nexpr ::= numero`, "undefined-rule");
    refuses(`root ::= "a"\nroot ::= "b"`, "duplicate-rule");
  });
  it("should refuse syntax errors with line and column", () => {
    for (const bad of [`root ::= "a`, `root ::= [a-`, `root ::= (a`, `root = "a"`, `root ::= "\\q"`, `root ::= [z-a]`, `root ::= "a"{3,1}`, `root ::= "\\uD800"`]) {
      refuses(bad, "syntax");
    }
    expect(() => parseGbnf(`root ::= "a" )`)).toThrow(/line 1, column 14/);
  });
  it("should stop hostile grammars at named limits", () => {
    refuses("root ::= " + "(".repeat(MAX_NESTING + 1) + '"a"' + ")".repeat(MAX_NESTING + 1), "limit");
    refuses(`root ::= "a"{${MAX_REPETITION + 1}}`, "limit");
    refuses(`root ::= "a"{99999999999999999999}`, "limit");
    refuses("root ::= " + '"a" '.repeat(MAX_GRAMMAR_LENGTH / 4 + 1), "limit");
    // Nested repetitions repeat a rule reference, so 2000^3 copies cost 3 × 2000 elements (as in llama.cpp).
    const nested = compileGbnf(`root ::= ((("a" "b"){2000}){2000}){2000}`);
    expect(nested.flat.elements.length).toBeLessThan(20_000);
    expect(nested.acceptsPrefix("ab".repeat(5000))).toBe(true);
    expect(nested.accepts("ab".repeat(5000))).toBe(false);
    // llama.cpp's "hang" case: nullable repetitions nested six deep make the start state explode.
    refuses("root ::= (((((([^x]*){0,99}){0,99}){0,99}){0,99}){0,99}){0,99}", "limit");
  });
});
