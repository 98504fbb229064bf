/**
 * A small parser of protobuf's text format (what Triton's config.pbtxt is written in): fields
 * `name: value`, nested messages `name { ... }` and lists `name [ a, b ]` (the colon optional),
 * string literals with escapes, numbers, identifiers (enum values, true/false) and `#` comments.
 * It keeps what a value was written as, so the schema check can tell "0" from 0 from ZERO.
 */

/** A scalar as written. */
export type TextScalar = { kind: "string"; value: string } | { kind: "number"; value: number; text: string } | { kind: "identifier"; value: string };

/** A field's value: a scalar or a nested message. */
export type TextValue = TextScalar | { kind: "message"; fields: TextField[] };

/** One occurrence of a field; a list `[a, b]` gives one occurrence per element, marked `inList`. */
export interface TextField {
  name: string;
  value: TextValue;
  inList: boolean;
}

type Token = { type: "punct"; text: string } | TextScalar;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) i++;
    else if (c === "#") while (i < text.length && text[i] !== "\n") i++;
    else if ("{}[]:,;<>".includes(c)) tokens.push({ type: "punct", text: text[i++] });
    else if (c === '"' || c === "'") {
      let value = "";
      i++;
      while (text[i] !== c) {
        if (i >= text.length) throw new Error("unterminated string");
        if (text[i] === "\\") {
          const escaped = text[++i];
          value += escaped === "n" ? "\n" : escaped === "t" ? "\t" : escaped;
        } else value += text[i];
        i++;
      }
      i++;
      tokens.push({ kind: "string", value });
    } else {
      const match = /^[-+]?(?:\d[\w.+-]*|\.\d[\w.+-]*|inf|nan)|^[A-Za-z_][\w.]*/.exec(text.slice(i));
      if (!match) throw new Error(`unexpected character ${JSON.stringify(c)} at ${i}`);
      const word = match[0];
      if (/^[A-Za-z_]/.test(word)) tokens.push({ kind: "identifier", value: word });
      else {
        const value = Number(word);
        if (Number.isNaN(value)) throw new Error(`bad number ${word}`);
        tokens.push({ kind: "number", value, text: word });
      }
      i += word.length;
    }
  }
  return tokens;
}

class Parser {
  #tokens: Token[];
  #at = 0;
  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }
  #peek(): Token | undefined {
    return this.#tokens[this.#at];
  }
  #isPunct(text: string): boolean {
    const token = this.#peek();
    return token !== undefined && "type" in token && token.text === text;
  }
  #expectPunct(text: string): void {
    if (!this.#isPunct(text)) throw new Error(`expected "${text}" at token ${this.#at}`);
    this.#at++;
  }
  message(end?: string): TextField[] {
    const fields: TextField[] = [];
    while (this.#peek() !== undefined && !(end && this.#isPunct(end))) {
      const name = this.#peek();
      if (!name || "type" in name || name.kind !== "identifier") throw new Error(`expected a field name at token ${this.#at}`);
      this.#at++;
      const colon = this.#isPunct(":");
      if (colon) this.#at++;
      if (this.#isPunct("[")) {
        this.#at++;
        while (!this.#isPunct("]")) {
          fields.push({ name: name.value, value: this.#value(), inList: true });
          if (this.#isPunct(",")) this.#at++;
          else if (!this.#isPunct("]")) throw new Error(`expected "," or "]" in the list of ${name.value}`);
        }
        this.#at++;
      } else {
        if (!colon && !this.#isPunct("{") && !this.#isPunct("<")) throw new Error(`expected ":" after ${name.value}`);
        fields.push({ name: name.value, value: this.#value(), inList: false });
      }
      if (this.#isPunct(",") || this.#isPunct(";")) this.#at++;
    }
    if (end) this.#expectPunct(end);
    return fields;
  }
  #value(): TextValue {
    if (this.#isPunct("{") || this.#isPunct("<")) {
      const close = this.#isPunct("{") ? "}" : ">";
      this.#at++;
      return { kind: "message", fields: this.message(close) };
    }
    const token = this.#peek();
    if (!token || "type" in token) throw new Error(`expected a value at token ${this.#at}`);
    this.#at++;
    // Adjacent string literals concatenate, as in protobuf.
    if (token.kind === "string") {
      let value = token.value;
      for (let next = this.#peek(); next && !("type" in next) && next.kind === "string"; next = this.#peek()) {
        value += next.value;
        this.#at++;
      }
      return { kind: "string", value };
    }
    return token;
  }
}

/** Parses a text-format message. Throws on any syntax error. */
export function parseTextFormat(text: string): TextField[] {
  return new Parser(tokenize(text)).message();
}

/** The occurrences of `name` among `fields`. */
export function fieldsNamed(fields: readonly TextField[], name: string): TextValue[] {
  return fields.filter((field) => field.name === name).map((field) => field.value);
}
