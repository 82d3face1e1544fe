"""Writes genuine PyTorch and NumPy checkpoints (and hostile ones) for the tests, with the values
PyTorch/NumPy report exported as JSON. Usage: /usr/bin/python3 checkpoints.py OUT_DIR"""
import io, json, os, pickle, struct, sys, zipfile

import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
expected = {}

def record(name, t):
    expected[name] = {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.float().flatten().tolist() if t.is_floating_point() else t.flatten().tolist()}

torch.manual_seed(0)
base = torch.arange(12, dtype=torch.float32) / 4
state = {
    "layer.weight": torch.randn(3, 5),
    "layer.half": (torch.randn(4, 2) * 4).half(),
    "layer.brain": (torch.randn(7) * 8).bfloat16(),
    "layer.ids": torch.tensor([[1, -2, 3], [2**40, 0, -7]], dtype=torch.int64),
    "view.a": base[:6],
    "view.b": base[6:].view(2, 3),
    "param": torch.nn.Parameter(torch.ones(2, 2)),
}
for name, t in state.items():
    record(name, t.detach())
torch.save(state, os.path.join(out, "model.bin"))
with open(os.path.join(out, "model.json"), "w") as f:
    json.dump(expected, f)

arrays = {"f32": np.arange(6, dtype="<f4").reshape(2, 3) / 8, "f16": np.array([1.5, -2.25, 0.125], dtype="<f2"), "i64": np.array([5, -6, 2**41], dtype="<i8"), "u8": np.arange(10, dtype="u1")}
np.savez(os.path.join(out, "arrays.npz"), **arrays)
np.savez_compressed(os.path.join(out, "arrays_compressed.npz"), **arrays)
# the same arrays deflated under other names, to read through a pulled model beside arrays.npz
np.savez_compressed(os.path.join(out, "zipped.npz"), **{"z." + k: v for k, v in arrays.items()})
with open(os.path.join(out, "arrays.json"), "w") as f:
    json.dump({k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.astype("float64").flatten().tolist() if v.dtype.kind == "f" else v.flatten().tolist()} for k, v in arrays.items()}, f)

# Hostile pickles, each placed where torch.save puts data.pkl.
class System:
    def __reduce__(self):
        return (os.system, ("echo pwned > " + os.path.join(out, "PWNED"),))
class Eval:
    def __reduce__(self):
        import builtins
        return (builtins.eval, ("__import__('os').system('touch " + os.path.join(out, "PWNED") + "')",))
hostile = {
    "system": pickle.dumps({"w": System()}, protocol=2),
    "eval": pickle.dumps({"w": Eval()}, protocol=2),
    "deep": b"\x80\x02" + b"(" * 5000 + b"N.",
    "memo-get": b"\x80\x02j" + struct.pack("<I", 2**31) + b".",
    "memo-put": b"\x80\x02}r" + struct.pack("<I", 2**31 - 1) + b".",
    "opcode": b"\x80\x02}\xff.",
}
for name, data in hostile.items():
    with zipfile.ZipFile(os.path.join(out, f"hostile-{name}.bin"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/version", "3\n")

# Hostile zips.
good = open(os.path.join(out, "arrays.npz"), "rb").read()
eocd = good.rfind(b"PK\x05\x06")
cd_offset = struct.unpack("<I", good[eocd + 16 : eocd + 20])[0]
# a central directory entry whose local header offset points past the end
bad = bytearray(good)
struct.pack_into("<I", bad, cd_offset + 42, len(good) + 1000)
open(os.path.join(out, "outside.npz"), "wb").write(bytes(bad))
# two central directory entries naming the same local header (overlap)
cd_size = struct.unpack("<I", good[eocd + 12 : eocd + 16])[0]
first_len = 46 + sum(struct.unpack("<HHH", good[cd_offset + 28 : cd_offset + 34]))
record_bytes = bytearray(good[cd_offset : cd_offset + first_len])
name_len = struct.unpack("<H", record_bytes[28:30])[0]
record_bytes[46 : 46 + name_len] = b"x" * (name_len - 4) + b".npy"
count = struct.unpack("<H", good[eocd + 10 : eocd + 12])[0]
overlap = bytearray(good[: cd_offset + cd_size]) + record_bytes + bytearray(good[eocd:])
new_eocd = cd_offset + cd_size + len(record_bytes)
struct.pack_into("<HHI", overlap, new_eocd + 8, count + 1, count + 1, cd_size + len(record_bytes))
open(os.path.join(out, "overlap.npz"), "wb").write(bytes(overlap))
# a zip bomb: 512 MiB of zeros, deflated
with zipfile.ZipFile(os.path.join(out, "bomb.npz"), "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    with z.open("zeros.npy", "w", force_zip64=True) as f:
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '|u1', 'fortran_order': False, 'shape': (536870912,), }".ljust(117) + b"\n"
        f.write(header)
        chunk = bytes(1 << 20)
        for _ in range(512):
            f.write(chunk)
print("ok")
