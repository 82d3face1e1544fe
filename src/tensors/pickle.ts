import { OciError } from "../errors.js";
import type { Dtype } from "./safetensors.js";

/** A storage a PyTorch checkpoint refers to: `data/<key>` inside the archive. */
export interface StorageRef {
  key: string;
  dtype: Dtype;
  /** Elements in the storage. */
  size: number;
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it. */
export interface TensorRef {
  storage: StorageRef;
  /** In elements. */
  offset: number;
  shape: number[];
  stride: number[];
}

const STORAGE_DTYPES: Record<string, Dtype> = {
  FloatStorage: "F32",
  DoubleStorage: "F64",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};
const TORCH_DTYPES: Record<string, Dtype> = {
  float32: "F32",
  float: "F32",
  float64: "F64",
  double: "F64",
  float16: "F16",
  half: "F16",
  bfloat16: "BF16",
  int64: "I64",
  long: "I64",
  int32: "I32",
  int: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

const MAX_MEMO = 1_000_000;
const MAX_STACK = 100_000;
const MAX_DEPTH = 1_000;

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
class OrderedDict extends Map<unknown, unknown> {}

function unsafe(reason: string): OciError {
  return new OciError("UNSAFE_PICKLE", `Cannot load the checkpoint: ${reason}; nothing was executed`);
}

/** The globals a checkpoint may name. Anything else is refused before it could be called. */
function allowGlobal(module: string, name: string): Global {
  const ok =
    (module === "collections" && name === "OrderedDict") ||
    (module === "torch._utils" && (name === "_rebuild_tensor_v2" || name === "_rebuild_parameter")) ||
    (module === "torch" && (Object.hasOwn(STORAGE_DTYPES, name) || Object.hasOwn(TORCH_DTYPES, name)));
  if (!ok) throw unsafe(`it names the global ${module}.${name}, which is not on the allow-list`);
  return new Global(module, name);
}

/**
 * Reads a PyTorch `data.pkl` (pickle protocols 2–5, the opcodes `torch.save` emits) without running
 * anything: an allow-list of globals, persistent ids resolved to storages, bounded memo and stack.
 * Returns the tensors of the state dict by name (nested dicts joined with ".").
 */
export function readTorchPickle(bytes: Uint8Array): Map<string, TensorRef> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let at = 0;

  const need = (n: number) => {
    if (at + n > bytes.byteLength)
      throw new OciError("INVALID_CHECKPOINT", "Cannot load the checkpoint: data.pkl ends early");
  };
  const take = (n: number) => {
    need(n);
    at += n;
    return bytes.subarray(at - n, at);
  };
  const u8 = () => take(1)[0] as number;
  const u16 = () => view.getUint16(take(2).byteOffset - bytes.byteOffset, true);
  const u32 = () => view.getUint32(take(4).byteOffset - bytes.byteOffset, true);
  const i32 = () => view.getInt32(take(4).byteOffset - bytes.byteOffset, true);
  const utf8 = (raw: Uint8Array) => {
    try {
      return decoder.decode(raw);
    } catch (cause) {
      throw new OciError(
        "INVALID_CHECKPOINT",
        "Cannot load the checkpoint: data.pkl holds a string that is not UTF-8",
        {
          cause,
        },
      );
    }
  };
  const line = () => {
    const end = bytes.indexOf(10, at);
    if (end === -1)
      throw new OciError("INVALID_CHECKPOINT", "Cannot load the checkpoint: data.pkl ends early");
    const text = utf8(bytes.subarray(at, end));
    at = end + 1;
    return text;
  };
  const push = (value: unknown) => {
    if (stack.length >= MAX_STACK) throw unsafe(`its stack grows past ${MAX_STACK}`);
    stack.push(value);
  };
  const pop = () => {
    if (stack.length === 0) throw unsafe("it pops an empty stack");
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const start = marks.pop();
    if (start === undefined) throw unsafe("it closes a mark it never opened");
    return stack.splice(start);
  };
  const memoize = (index: number) => {
    if (index > MAX_MEMO || memo.size >= MAX_MEMO) throw unsafe(`its memo grows past ${MAX_MEMO}`);
    memo.set(index, stack[stack.length - 1]);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) throw unsafe("it sets items on something that is not a dict");
    // Python's unpickler fails on a key without a value too (an IndexError).
    if (items.length % 2 !== 0) throw unsafe("it sets a key without a value");
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };

  const persistent = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== "storage")
      throw unsafe("it has a persistent id that is not a storage");
    const [, type, key, , size] = pid as [string, unknown, unknown, unknown, unknown];
    if (!(type instanceof Global) || typeof key !== "string" || typeof size !== "number")
      throw unsafe("it has a malformed storage id");
    const dtype = STORAGE_DTYPES[type.name] ?? TORCH_DTYPES[type.name];
    if (!dtype) throw unsafe(`storage type ${type.name} is not supported`);
    if (!/^\w+$/.test(key)) throw unsafe(`storage key "${key}" is not a plain name`);
    return { key, dtype, size };
  };

  const reduce = (callable: unknown, args: unknown): unknown => {
    if (!(callable instanceof Global) || !Array.isArray(args))
      throw unsafe("it calls something that is not an allowed global");
    const fn = `${callable.module}.${callable.name}`;
    if (fn === "collections.OrderedDict") return new OrderedDict();
    if (fn === "torch._utils._rebuild_tensor_v2") {
      const [storage, offset, shape, stride] = args as [StorageRef, number, number[], number[]];
      if (
        typeof storage?.key !== "string" ||
        typeof offset !== "number" ||
        !Array.isArray(shape) ||
        !Array.isArray(stride)
      ) {
        throw unsafe("it rebuilds a tensor from malformed arguments");
      }
      return { storage, offset, shape, stride } satisfies TensorRef;
    }
    if (fn === "torch._utils._rebuild_parameter") return args[0];
    throw unsafe(`it calls ${fn}`);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw unsafe("its protocol is newer than 5");
        break;
      case 0x95: // FRAME
        take(8);
        break;
      case 0x2e: {
        // STOP
        return flatten(pop(), bytes.byteLength);
      }
      case 0x28: // MARK
        if (marks.length >= MAX_DEPTH) throw unsafe(`it nests deeper than ${MAX_DEPTH}`);
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE (tuples are lists here)
        push([]);
        break;
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x85: // TUPLE1
        push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push([pop(), b, c]);
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x8a: {
        // LONG1
        const n = u8();
        const raw = take(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i] as number);
        // Two's complement: the top bit of the last byte (none when n is 0) is the sign.
        if (((raw[n - 1] ?? 0) & 0x80) !== 0) value -= 1n << BigInt(8 * n);
        push(Number(value));
        break;
      }
      case 0x47: // BINFLOAT
        push(view.getFloat64(take(8).byteOffset - bytes.byteOffset, false));
        break;
      case 0x58: // BINUNICODE
        push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(take(u8())));
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()));
        break;
      case 0x42: // BINBYTES
        push(take(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        push(allowGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          throw unsafe("it builds a global from non-strings");
        push(allowGlobal(module, name));
        break;
      }
      case 0x71: // BINPUT
        memoize(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoize(u32());
        break;
      case 0x94: // MEMOIZE
        memoize(memo.size);
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) throw unsafe(`it reads memo slot ${index}, which was never set`);
        push(memo.get(index));
        break;
      }
      case 0x51: // BINPERSID
        push(persistent(pop()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        push(reduce(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: state for an OrderedDict (or a parameter's hooks): nothing to run, kept as is
        pop();
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(stack[stack.length - 1], [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(stack[stack.length - 1], items);
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        const list = stack[stack.length - 1];
        if (!Array.isArray(list)) throw unsafe("it appends to something that is not a list");
        list.push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = stack[stack.length - 1];
        if (!Array.isArray(list)) throw unsafe("it appends to something that is not a list");
        list.push(...items);
        break;
      }
      default:
        throw unsafe(`opcode 0x${op.toString(16)} is not one torch.save emits`);
    }
  }
}

/**
 * The most dict items the state dict may be walked through. Shared references let a few bytes name
 * a dict twice at each level, so the flattened output can double per level (a pickle bomb): the walk
 * counts items as it goes. A genuine data.pkl spends at least 4 bytes on each item (a key and a
 * value, memoized at best) and rarely saves a dict under more than one or two keys, so 8 items per
 * byte is far beyond any real checkpoint; 1,000,000 caps it outright (the largest state dicts hold
 * some 100,000 tensors).
 */
const MAX_ITEMS = 1_000_000;
const ITEMS_PER_BYTE = 8;
/** The most characters of names the walk may build: 64 Mi, some 100 times a real state dict's. */
const MAX_NAME_CHARS = 64 * 1024 * 1024;

function tooLarge(reason: string): OciError {
  return new OciError(
    "INVALID_CHECKPOINT",
    `Cannot load the checkpoint: data.pkl ${reason} (dicts shared over and over, a pickle bomb?); nothing was executed. Save the state dict as safetensors or with a plain torch.save(model.state_dict())`,
  );
}

const isTensor = (value: unknown): value is TensorRef =>
  value !== null && typeof value === "object" && "storage" in value;

/** The tensors of a (possibly nested) state dict, names joined with ".", the walk bounded. */
function flatten(root: unknown, pickleBytes: number): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const maxItems = Math.min(MAX_ITEMS, 1024 + ITEMS_PER_BYTE * pickleBytes);
  let items = 0;
  let chars = 0;
  const walk = (dict: Map<unknown, unknown>, prefix: string, depth: number) => {
    if (depth > 64) throw unsafe("its dicts nest deeper than 64");
    for (const [key, value] of dict) {
      if (++items > maxItems) throw tooLarge(`expands to more than ${maxItems} dict items`);
      const nested = value instanceof Map;
      if (!nested && !isTensor(value)) continue;
      // A key that is a list or a dict would print itself whole, shared parts again and again.
      if (typeof key !== "string" && typeof key !== "number")
        throw new OciError(
          "INVALID_CHECKPOINT",
          "Cannot load the checkpoint: a dict key in data.pkl is not a name (a string or a number); nothing was executed",
        );
      const name = prefix ? `${prefix}.${String(key)}` : String(key);
      chars += name.length;
      if (chars > MAX_NAME_CHARS)
        throw tooLarge(`expands to more than ${MAX_NAME_CHARS} characters of names`);
      if (nested) walk(value, name, depth + 1);
      else out.set(name, value);
    }
  };
  if (root instanceof Map) walk(root, "", 0);
  else if (isTensor(root)) out.set("", root);
  return out;
}
