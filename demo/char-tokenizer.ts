// The demo language model's tokenizer: a character vocabulary stored as tokenizer.json (a BPE with
// no merges, as scripts/train-lm.py writes it). Web APIs only.

export class CharTokenizer {
  readonly #ids: Map<string, number>;
  readonly #chars: Map<number, string>;
  /** The end-of-text id (also the start of every prompt). */
  readonly eot: number;

  constructor(tokenizerJson: unknown) {
    const model = (
      tokenizerJson as { model?: { type?: string; vocab?: Record<string, number>; merges?: unknown[] } }
    ).model;
    if (!model?.vocab || (model.merges?.length ?? 0) > 0)
      throw new Error("tokenizer.json is not a character vocabulary (a BPE with no merges)");
    this.#ids = new Map(Object.entries(model.vocab));
    this.#chars = new Map([...this.#ids].map(([ch, id]) => [id, ch]));
    const eot = this.#ids.get("<|endoftext|>");
    if (eot === undefined) throw new Error("tokenizer.json has no <|endoftext|>");
    this.eot = eot;
  }

  /** The end-of-text id, then one id per character; characters outside the vocabulary are left out. */
  encode(text: string): number[] {
    const ids = [this.eot];
    for (const ch of text.replace(/\t/g, "    ")) {
      const id = this.#ids.get(ch);
      if (id !== undefined && id !== this.eot) ids.push(id);
    }
    return ids;
  }

  decode(ids: number[]): string {
    return ids.map((id) => (id === this.eot ? "" : (this.#chars.get(id) ?? ""))).join("");
  }
}
