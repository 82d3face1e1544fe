// The torch pickle reader opcode by opcode: what each decodes to, and each refusal with its code and reason.
import { describe, expect, it } from "vitest";
import { isOciError, type OciError } from "../../src/index.js";
import { readTorchPickle } from "../../src/tensors/pickle.js";
import { Pickle } from "../support/checkpoint-files.js";

const enc = new TextEncoder();
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return [...b];
};

/** Pushes `count` copies of `byte` (too many to spread into a call). */
function fill(p: Pickle, count: number, byte: number): Pickle {
  for (let i = 0; i < count; i++) p.parts.push(byte);
  return p;
}

function refusal(bytes: Uint8Array): OciError {
  try {
    readTorchPickle(bytes);
  } catch (e) {
    if (isOciError(e)) return e;
    throw e;
  }
  throw new Error("accepted");
}
const unsafe = (reason: string) => `Cannot load the checkpoint: ${reason}; nothing was executed`;
function refusedAsUnsafe(p: Pickle | Uint8Array, reason: string) {
  const error = refusal(p instanceof Pickle ? p.bytes() : p);
  expect([error.code, error.message]).toEqual(["UNSAFE_PICKLE", unsafe(reason)]);
}
function refusedAsInvalid(p: Pickle | Uint8Array, message: string) {
  const error = refusal(p instanceof Pickle ? p.bytes() : p);
  expect([error.code, error.message]).toEqual(["INVALID_CHECKPOINT", message]);
}

/** `storage` persistent id: ("storage", module.name, key, "cpu", numel), then BINPERSID. */
const storage = (p: Pickle, key: string, numel = 4, module = "torch", name = "FloatStorage") =>
  p.op(0x28).str("storage").global(module, name).str(key).str("cpu").int(numel).op(0x74, 0x51);

/** `_rebuild_tensor_v2(storage, offset, shape, stride)` with the shape written by `shape` (one stack item). */
function tensorWith(p: Pickle, shape: (p: Pickle) => void, name = "FloatStorage", module = "torch") {
  p.global("torch._utils", "_rebuild_tensor_v2").op(0x28);
  storage(p, "0", 4, module, name);
  p.int(0);
  shape(p);
  return p.tuple([]).op(0x74, 0x52);
}

/**
 * `{"t": tensor}` whose shape is one tuple of the values `values` pushes, read back; from `at` bytes into
 * a larger buffer of junk when `at` is given (as data.pkl is a window of the archive it was read from).
 */
function shapeOf(values: (p: Pickle) => void, at?: number): unknown[] {
  const p = new Pickle().op(0x7d).str("t");
  tensorWith(p, (q) => {
    q.op(0x28);
    values(q);
    q.op(0x74);
  }).op(0x73);
  let bytes = p.bytes();
  if (at !== undefined) {
    const host = new Uint8Array(at + bytes.byteLength + 16).fill(0xa5);
    host.set(bytes, at);
    bytes = host.subarray(at, at + bytes.byteLength);
  }
  return readTorchPickle(bytes).get("t")?.shape as unknown[];
}

describe("readTorchPickle decodes each opcode torch.save emits", () => {
  it("ints: BININT1, BININT2 and BININT little-endian and signed, LONG1 of 0, 1 and 2 bytes either sign", () => {
    expect(
      shapeOf((p) => p.op(0x4b, 0xfe, 0x4d, 0x02, 0x01, 0x4a, ...u32(-5 >>> 0), 0x4a, ...u32(0x01020304))),
    ).toEqual([254, 258, -5, 0x01020304]);
    expect(
      shapeOf((p) =>
        p.op(0x8a, 0, 0x8a, 1, 0xff, 0x8a, 2, 0x02, 0x01, 0x8a, 2, 0x00, 0xff, 0x8a, 2, 0x80, 0x00),
      ),
    ).toEqual([0, -1, 258, -256, 128]);
  });

  it("BINFLOAT big-endian, NONE, NEWTRUE, NEWFALSE, strings and bytes", () => {
    const float = new Uint8Array(8);
    new DataView(float.buffer).setFloat64(0, 1.5);
    expect(
      shapeOf((p) =>
        p
          .op(0x47, ...float, 0x4e, 0x88, 0x89)
          .op(0x8c, 3, ...enc.encode("héx").subarray(0, 3))
          .op(0x58, ...u32(4), ...enc.encode("héx"))
          .op(0x43, 2, 7, 8, 0x42, ...u32(3), 1, 2, 3),
      ),
    ).toEqual([1.5, null, true, false, "hé", "héx", new Uint8Array([7, 8]), new Uint8Array([1, 2, 3])]);
  });

  it("a pickle that starts partway into a larger buffer: every multi-byte field read from where it is", () => {
    const float = new Uint8Array(8);
    new DataView(float.buffer).setFloat64(0, -2.25);
    for (const at of [1, 3, 8])
      expect(
        shapeOf(
          (p) =>
            p
              .op(0x4d, 0x02, 0x01, 0x4a, ...u32(-5 >>> 0), 0x47, ...float)
              .op(0x58, ...u32(3), ...enc.encode("abc"))
              .op(0x4b, 9, 0x72, ...u32(70_000), 0x6a, ...u32(70_000)),
          at,
        ),
      ).toEqual([258, -5, -2.25, "abc", 9, 9]);
  });

  it("tuples: EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3 in order; lists by APPEND and APPENDS", () => {
    expect(shapeOf((p) => p.op(0x29))).toEqual([[]]);
    expect(
      shapeOf((p) => p.op(0x4b, 1, 0x85, 0x4b, 2, 0x4b, 3, 0x86, 0x4b, 4, 0x4b, 5, 0x4b, 6, 0x87)),
    ).toEqual([[1], [2, 3], [4, 5, 6]]);
    expect(shapeOf((p) => p.op(0x5d, 0x4b, 1, 0x61, 0x28, 0x4b, 2, 0x4b, 3, 0x65))).toEqual([[1, 2, 3]]);
    expect(shapeOf((p) => p.op(0x5d))).toEqual([[]]);
  });

  it("the memo: BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE; FRAME and PROTO are skipped", () => {
    expect(
      shapeOf((p) =>
        p
          .op(0x95, 9, 0, 0, 0, 0, 0, 0, 0)
          .op(0x4b, 7, 0x71, 3, 0x4b, 8, 0x72, ...u32(300), 0x4b, 9, 0x94, 0x80, 5)
          .op(0x68, 3, 0x6a, ...u32(300), 0x6a, ...u32(2)),
      ),
    ).toEqual([7, 8, 9, 7, 8, 9]);
  });

  it("GLOBAL and STACK_GLOBAL: module, then name", () => {
    const p = new Pickle()
      .op(0x7d)
      .str("a")
      .op(0x8c, 12, ...enc.encode("torch._utils"), 0x8c, 18);
    p.op(...enc.encode("_rebuild_tensor_v2"), 0x93, 0x28);
    storage(p, "0").int(1).tuple([2]).tuple([1]).op(0x74, 0x52, 0x73);
    expect(readTorchPickle(p.bytes()).get("a")).toEqual({
      storage: { key: "0", dtype: "F32", size: 4 },
      offset: 1,
      shape: [2],
      stride: [1],
    });
  });

  it.each([
    ["FloatStorage", "F32"],
    ["DoubleStorage", "F64"],
    ["HalfStorage", "F16"],
    ["BFloat16Storage", "BF16"],
    ["LongStorage", "I64"],
    ["IntStorage", "I32"],
    ["ShortStorage", "I16"],
    ["CharStorage", "I8"],
    ["ByteStorage", "U8"],
    ["BoolStorage", "BOOL"],
    ["float32", "F32"],
    ["float", "F32"],
    ["float64", "F64"],
    ["double", "F64"],
    ["float16", "F16"],
    ["half", "F16"],
    ["bfloat16", "BF16"],
    ["int64", "I64"],
    ["long", "I64"],
    ["int32", "I32"],
    ["int", "I32"],
    ["int16", "I16"],
    ["int8", "I8"],
    ["uint8", "U8"],
    ["bool", "BOOL"],
  ])("a storage of torch.%s holds %s", (name, dtype) => {
    const p = new Pickle().op(0x7d).str("t");
    tensorWith(p, (q) => q.tuple([2]), name).op(0x73);
    expect(readTorchPickle(p.bytes()).get("t")?.storage.dtype).toBe(dtype);
  });

  it("an OrderedDict (collections.OrderedDict() then BUILD with its state) of parameters, nested names joined", () => {
    const p = new Pickle().global("collections", "OrderedDict").op(0x29, 0x52, 0x28).str("enc");
    p.op(0x7d).str("w").global("torch._utils", "_rebuild_parameter").op(0x28);
    tensorWith(p, (q) => q.tuple([2]));
    p.op(0x88, 0x74, 0x52, 0x73); // _rebuild_parameter(tensor, True)
    p.int(3).op(0x7d).str("b");
    tensorWith(p, (q) => q.tuple([1])).op(0x73, 0x75, 0x7d, 0x62); // SETITEMS, then BUILD({})
    const tensors = readTorchPickle(p.bytes());
    expect([...tensors.keys()]).toEqual(["enc.w", "3.b"]);
    expect(tensors.get("enc.w")).toMatchObject({ shape: [2], stride: [] });
  });

  it("skips values that are not tensors or dicts, keyed by anything", () => {
    const p = new Pickle().op(0x7d, 0x28);
    p.str("none").op(0x4e).str("str").str("x").str("num").int(1).str("list").op(0x5d);
    p.str("bytes").op(0x43, 1, 0).op(0x28, 0x29, 0x4e, 0x74).op(0x4e); // a tuple key, a None value
    p.str("t");
    tensorWith(p, (q) => q.tuple([2])).op(0x75);
    expect([...readTorchPickle(p.bytes()).keys()]).toEqual(["t"]);
  });

  it("a bare tensor as the root is named ''; a root that is neither has no tensors", () => {
    const root = tensorWith(new Pickle(), (q) => q.tuple([2]));
    expect([...readTorchPickle(root.bytes()).keys()]).toEqual([""]);
    expect(readTorchPickle(new Pickle().op(0x5d).bytes()).size).toBe(0);
  });

  it("nests dicts 64 deep, and no deeper", () => {
    const nested = (depth: number) => {
      const p = new Pickle();
      for (let i = 0; i < depth; i++) p.op(0x7d).str("a");
      p.op(0x7d).str("t");
      tensorWith(p, (q) => q.tuple([2])).op(0x73);
      for (let i = 0; i < depth; i++) p.op(0x73);
      return p;
    };
    expect([...readTorchPickle(nested(64).bytes()).keys()]).toEqual([`${"a.".repeat(64)}t`]);
    refusedAsUnsafe(nested(65), "its dicts nest deeper than 64");
  });

  it("accepts protocol 5 and 1000 open marks, the stack's 100000th item and memo slot 1000000", () => {
    expect(readTorchPickle(new Pickle().op(0x80, 5, 0x4e).bytes()).size).toBe(0);
    expect(readTorchPickle(new Pickle().op(...Array(1000).fill(0x28), 0x4e).bytes()).size).toBe(0);
    expect(readTorchPickle(fill(new Pickle(), 100_000, 0x4e).bytes()).size).toBe(0);
    expect(readTorchPickle(new Pickle().op(0x4e, 0x72, ...u32(1_000_000)).bytes()).size).toBe(0);
  });

  it("accepts 1000000 memo entries", () => {
    const p = fill(new Pickle().op(0x4e), 1_000_000, 0x94);
    expect(readTorchPickle(p.bytes()).size).toBe(0);
  });
});

describe("readTorchPickle refuses, and says why", () => {
  it("globals off the allow-list, before anything could be called", () => {
    for (const [module, name] of [
      ["builtins", "eval"],
      ["os", "OrderedDict"],
      ["collections", "defaultdict"],
      ["os", "_rebuild_tensor_v2"],
      ["torch._utils", "_rebuild_tensor"],
      ["torch", "_rebuild_tensor_v2"],
      ["os", "FloatStorage"],
      ["torch", "load"],
      ["torch", "toString"],
      ["torch", "constructor"],
    ] as const)
      refusedAsUnsafe(
        new Pickle().global(module, name),
        `it names the global ${module}.${name}, which is not on the allow-list`,
      );
    refusedAsUnsafe(
      new Pickle().str("posix").str("system").op(0x93),
      "it names the global posix.system, which is not on the allow-list",
    );
  });

  it("STACK_GLOBAL of non-strings", () => {
    refusedAsUnsafe(new Pickle().int(1).str("x").op(0x93), "it builds a global from non-strings");
    refusedAsUnsafe(new Pickle().str("torch").int(1).op(0x93), "it builds a global from non-strings");
  });

  it("calls of allowed globals that are not constructors, and calls of non-globals", () => {
    refusedAsUnsafe(
      new Pickle().global("torch", "FloatStorage").op(0x29, 0x52),
      "it calls torch.FloatStorage",
    );
    refusedAsUnsafe(new Pickle().str("x").op(0x29, 0x52), "it calls something that is not an allowed global");
    refusedAsUnsafe(
      new Pickle().global("collections", "OrderedDict").op(0x4e, 0x52),
      "it calls something that is not an allowed global",
    );
  });

  it("_rebuild_tensor_v2 of malformed arguments", () => {
    const rebuild = (args: (p: Pickle) => void) => {
      const p = new Pickle().global("torch._utils", "_rebuild_tensor_v2").op(0x28);
      args(p);
      return p.op(0x74, 0x52);
    };
    const reason = "it rebuilds a tensor from malformed arguments";
    refusedAsUnsafe(
      rebuild(() => {}),
      reason,
    );
    refusedAsUnsafe(
      rebuild((p) => p.int(1).int(0).tuple([2]).tuple([1])),
      reason,
    );
    refusedAsUnsafe(
      rebuild((p) => storage(p, "0").str("0").tuple([2]).tuple([1])),
      reason,
    );
    refusedAsUnsafe(
      rebuild((p) => storage(p, "0").int(0).int(2).tuple([1])),
      reason,
    );
    refusedAsUnsafe(
      rebuild((p) => storage(p, "0").int(0).tuple([2]).int(1)),
      reason,
    );
  });

  it("persistent ids that are not plain storages", () => {
    refusedAsUnsafe(new Pickle().str("storage").op(0x51), "it has a persistent id that is not a storage");
    refusedAsUnsafe(
      new Pickle().tuple(["file", "x"]).op(0x51),
      "it has a persistent id that is not a storage",
    );
    const pid = (items: (p: Pickle) => void) => {
      const p = new Pickle().op(0x28).str("storage");
      items(p);
      return p.op(0x74, 0x51);
    };
    const malformed = "it has a malformed storage id";
    refusedAsUnsafe(
      pid((p) => p.str("FloatStorage").str("0").str("cpu").int(4)),
      malformed,
    );
    refusedAsUnsafe(
      pid((p) => p.global("torch", "FloatStorage").int(0).str("cpu").int(4)),
      malformed,
    );
    refusedAsUnsafe(
      pid((p) => p.global("torch", "FloatStorage").str("0").str("cpu").str("4")),
      malformed,
    );
    refusedAsUnsafe(
      pid((p) => p.global("collections", "OrderedDict").str("0").str("cpu").int(4)),
      "storage type OrderedDict is not supported",
    );
    for (const key of ["../0", "0/..", "", "a b"])
      refusedAsUnsafe(
        pid((p) => p.global("torch", "FloatStorage").str(key).str("cpu").int(4)),
        `storage key "${key}" is not a plain name`,
      );
    const p = new Pickle().op(0x7d).str("t");
    p.global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    storage(p, "data_10").int(0).tuple([2]).tuple([1]).op(0x74, 0x52, 0x73);
    expect(readTorchPickle(p.bytes()).get("t")?.storage).toEqual({ key: "data_10", dtype: "F32", size: 4 });
  });

  it("opcodes torch.save does not emit", () => {
    refusedAsUnsafe(new Uint8Array([0x80, 2, 0x69]), "opcode 0x69 is not one torch.save emits");
    refusedAsUnsafe(new Uint8Array([0x80, 2, 0x30]), "opcode 0x30 is not one torch.save emits");
    refusedAsUnsafe(new Pickle().op(0x80, 6), "its protocol is newer than 5");
  });

  it("a malformed stack: popped empty, a mark never opened, items set on a non-dict, appended to a non-list", () => {
    refusedAsUnsafe(new Pickle(), "it pops an empty stack");
    refusedAsUnsafe(new Pickle().op(0x74), "it closes a mark it never opened");
    refusedAsUnsafe(new Pickle().op(0x5d, 0x4e, 0x4e, 0x73), "it sets items on something that is not a dict");
    refusedAsUnsafe(
      new Pickle().op(0x5d, 0x28, 0x4e, 0x4e, 0x75),
      "it sets items on something that is not a dict",
    );
    refusedAsUnsafe(new Pickle().op(0x7d, 0x28, 0x4e, 0x75), "it sets a key without a value");
    refusedAsUnsafe(new Pickle().op(0x7d, 0x4e, 0x61), "it appends to something that is not a list");
    refusedAsUnsafe(new Pickle().op(0x7d, 0x28, 0x4e, 0x65), "it appends to something that is not a list");
    refusedAsUnsafe(new Pickle().op(0x4e, 0x68, 7), "it reads memo slot 7, which was never set");
    refusedAsUnsafe(
      new Pickle().op(0x4e, 0x6a, ...u32(70000)),
      "it reads memo slot 70000, which was never set",
    );
  });

  it("a dict key that is not a string or a number, where it names a tensor or a dict", () => {
    const message =
      "Cannot load the checkpoint: a dict key in data.pkl is not a name (a string or a number); nothing was executed";
    for (const key of [[0x4e], [0x88], [0x29], [0x43, 1, 0]]) {
      refusedAsInvalid(new Pickle().op(0x7d, ...key, 0x7d, 0x73), message);
      const p = new Pickle().op(0x7d, ...key);
      refusedAsInvalid(tensorWith(p, (q) => q.tuple([2])).op(0x73), message);
    }
  });

  it("bounds: protocol, marks, stack, memo", () => {
    refusedAsUnsafe(new Pickle().op(...Array(1001).fill(0x28)), "it nests deeper than 1000");
    refusedAsUnsafe(fill(new Pickle(), 100_001, 0x4e), "its stack grows past 100000");
    refusedAsUnsafe(new Pickle().op(0x4e, 0x72, ...u32(1_000_001)), "its memo grows past 1000000");
    const p = fill(new Pickle().op(0x4e), 1_000_001, 0x94);
    refusedAsUnsafe(p, "its memo grows past 1000000");
  });

  it("truncated data and strings that are not UTF-8", () => {
    const early = "Cannot load the checkpoint: data.pkl ends early";
    refusedAsInvalid(new Uint8Array([0x80, 2, 0x4e]), early);
    refusedAsInvalid(new Uint8Array([0x80, 2, 0x4a, 1, 2, 3]), early);
    refusedAsInvalid(new Uint8Array([0x80, 2, 0x58, 5, 0, 0, 0, 0x61]), early);
    refusedAsInvalid(new Uint8Array([0x80, 2, 0x63, ...enc.encode("torch")]), early);
    refusedAsInvalid(new Uint8Array([0x80, 2, 0x63, ...enc.encode("torch\nFloat")]), early);
    refusedAsInvalid(
      new Pickle().op(0x8c, 1, 0xff),
      "Cannot load the checkpoint: data.pkl holds a string that is not UTF-8",
    );
    // the decoder's own error stays attached, for whoever debugs the file
    expect(refusal(new Pickle().op(0x8c, 1, 0xff).bytes()).cause).toBeInstanceOf(TypeError);
    refusedAsInvalid(
      new Pickle().op(0x63, 0xc3, 0x0a, 0x61, 0x0a),
      "Cannot load the checkpoint: data.pkl holds a string that is not UTF-8",
    );
  });
});

describe("the walk of the state dict is bounded by the pickle's size", () => {
  const bomb = (reason: string) =>
    `Cannot load the checkpoint: data.pkl ${reason} (dicts shared over and over, a pickle bomb?); nothing was executed. Save the state dict as safetensors or with a plain torch.save(model.state_dict())`;

  /**
   * `{0: D, 1: D, …, m-1: D, then r more None items}` with D a shared dict of k None items, padded
   * with `pad` PROTO opcodes (2 bytes each): m·(k+1) + r items walked.
   */
  function shared(k: number, m: number, r: number, pad: number): Uint8Array {
    const p = new Pickle().op(0x7d, 0x28);
    for (let i = 0; i < k; i++) p.op(0x4d, i & 0xff, i >> 8, 0x4e);
    p.op(0x75, 0x71, 0).op(0x7d, 0x28);
    for (let i = 0; i < m; i++) p.op(0x4d, i & 0xff, i >> 8, 0x68, 0);
    for (let i = 0; i < r; i++) p.op(0x4a, ...u32(100_000 + i), 0x4e);
    p.op(0x75);
    for (let i = 0; i < pad; i++) p.parts.push(0x80, 2);
    return p.bytes();
  }

  it("walks exactly 1024 + 8 items per byte, and refuses one more", () => {
    // Find r and pad with items = 1024 + 8 * bytes: each r adds one item and 6 bytes, each pad 2 bytes.
    const k = 200;
    const m = 60;
    const base = shared(k, m, 0, 0).byteLength;
    let found: [number, number] | undefined;
    for (let pad = 3; pad < 3 + 47 && !found; pad++) {
      // m(k+1) + r = 1024 + 8(base + 6r + 2 pad)  →  r = (m(k+1) - 1024 - 8 base - 16 pad) / 47
      const r = (m * (k + 1) - 1024 - 8 * base - 16 * pad) / 47;
      if (Number.isInteger(r) && r >= 0) found = [r, pad];
    }
    const [r, pad] = found as [number, number];
    const exact = shared(k, m, r, pad);
    expect(m * (k + 1) + r).toBe(1024 + 8 * exact.byteLength);
    expect(readTorchPickle(exact).size).toBe(0);
    const over = shared(k, m, r + 1, pad - 3); // one more item in as many bytes
    expect(over.byteLength).toBe(exact.byteLength);
    refusedAsInvalid(over, bomb(`expands to more than ${m * (k + 1) + r} dict items`));
  });

  it("walks at most 1000000 items however large the pickle", () => {
    // 999 references to a shared dict of 1000 items: 999·1001 = 999999, plus r root items; padded past 125 kB.
    const big = (r: number) => shared(1000, 999, r, 70_000);
    expect(big(1).byteLength).toBeGreaterThan(125_000);
    expect(readTorchPickle(big(1)).size).toBe(0);
    refusedAsInvalid(big(2), bomb("expands to more than 1000000 dict items"));
  });

  it("builds at most 64 Mi characters of names", () => {
    // Six levels of {"a": D, "b": D} over a dict keyed by one long name L: every path is walked.
    const names = (length: number, extra: number) => {
      const p = fill(new Pickle().op(0x7d, 0x58, ...u32(length)), length, 0x78);
      p.op(0x7d, 0x73, 0x71, 0); // D0 = {L: {}}
      for (let level = 1; level <= 6; level++)
        p.op(0x7d, 0x28, 0x8c, 1, 0x61, 0x68, level - 1, 0x8c, 1, 0x62, 0x68, level - 1, 0x75, 0x71, level);
      // The root: {"b": D6, a name of `extra` characters: {}}
      fill(p.op(0x7d, 0x28, 0x8c, 1, 0x62, 0x68, 6, 0x58, ...u32(extra)), extra, 0x79);
      return p.op(0x7d, 0x75).bytes();
    };
    // Names: "b" and the extra one at the root; under D6, 2^d names of 2d+1 characters at depth d = 1…6;
    // 64 leaves of 14 + L characters.
    let chars = 1;
    for (let d = 1; d <= 6; d++) chars += 2 ** d * (2 * d + 1);
    const L = Math.floor((64 * 1024 * 1024 - chars) / 64) - 14;
    const extra = 64 * 1024 * 1024 - chars - 64 * (14 + L);
    expect(extra).toBeGreaterThan(0);
    expect(readTorchPickle(names(L, extra)).size).toBe(0);
    refusedAsInvalid(
      names(L, extra + 1),
      bomb(`expands to more than ${64 * 1024 * 1024} characters of names`),
    );
  });
});
