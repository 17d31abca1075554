#!/usr/bin/env python3
"""Writes the seed corpus of safetensors_fuzz into tests/fuzz/corpus/safetensors/ (standard library only).

Small hand-made images: valid files and the ways real files go wrong (truncation, lying sizes and
offsets, bad or nested JSON, huge header lengths). Crash reproducers found by fuzzing are kept in
the same folder under names starting with "crash-"; this script leaves them alone.
Run from anywhere: python3 tests/fuzz/make_seed_corpus.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def image(header, payload=b"", pad=True, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + payload


def valid_tiny():
    a = struct.pack("<6f", 1.5, -2.0, 3.25, 0.0, 7.0, 8.0)
    b = struct.pack("<2q", 42, -1)
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
    }
    return header, a + b


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if not name.startswith("crash-"):
            os.remove(os.path.join(OUT, name))
    header, payload = valid_tiny()
    valid = image(header, payload)
    hlen = struct.unpack("<Q", valid[:8])[0]
    seeds = {
        "valid_tiny": valid,
        "valid_empty_header": image({}),
        "valid_all_dtypes": image(
            {f"t{i}": {"dtype": d, "shape": [2], "data_offsets": [16 * i, 16 * i + 2 * s]}
             for i, (d, s) in enumerate([("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4),
                                          ("I16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1)])},
            bytes(range(192))),
        "valid_scalar_and_empty": image({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                                         "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]}}, b"\0\0\x80?"),
        "valid_unpadded": image(header, payload, pad=False),
        "truncated_in_length": valid[:5],
        "truncated_in_header": valid[: 8 + hlen // 2],
        "truncated_in_data": valid[:-10],
        "lying_shape": image({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"12345678"),
        "lying_offsets_past_end": image({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"12345678"),
        "lying_begin_after_end": image({"x": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, b"12345678"),
        "lying_header_length": struct.pack("<Q", hlen + 1000) + valid[8:],
        "overlap": image({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"12345678"),
        # An empty tensor between two overlapping ones must not hide the overlap.
        "overlap_behind_empty": image({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                                       "b": {"dtype": "U8", "shape": [0], "data_offsets": [2, 2]},
                                       "c": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}}, b"12345678"),
        "shape_overflow": image({"x": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]}},
                                b"12345678"),
        # Prefix product above INT64_MAX (but below 2^64) times zero: a valid empty tensor.
        "shape_huge_times_zero": image({"x": {"dtype": "F32", "shape": [4294967296, 2147483649, 0],
                                              "data_offsets": [0, 0]}}),
        "shape_negative": image({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"12345678"),
        "shape_float": image({"x": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, b"12345678"),
        "offsets_huge": image({"x": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551615, 18446744073709551615]}}),
        "offsets_negative": image({"x": {"dtype": "U8", "shape": [1], "data_offsets": [-1, 0]}}, b"1"),
        "offsets_three": image({"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}, b"1"),
        "unknown_dtype": image({"x": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"12345678"),
        "entry_not_object": image({"x": [1, 2, 3]}),
        "metadata_not_strings": image({"__metadata__": {"a": 1}}),
        "metadata_not_object": image({"__metadata__": "x"}),
        "bad_json": image(None, raw_header=b'{"x": {"dtype": "F32", "shape": [2],'),
        "bad_json_trailing": image(None, raw_header=b'{} {}'),
        "bad_utf8": image(None, raw_header=b'{"\xff\xfe": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}'),
        "json_array": image([1, 2]),
        "json_nested": image(None, raw_header=b'{"x": ' + b"[" * 1500 + b"]" * 1500 + b"}"),
        "json_nested_objects": image(None, raw_header=b'{"__metadata__": ' + b'{"a":' * 500 + b"1" + b"}" * 501),
        "header_length_huge": struct.pack("<Q", 0xFFFFFFFFFFFFFFFF) + b"{}",
        "header_length_limit": struct.pack("<Q", 100 << 20) + b"{}",
        "header_length_zero": struct.pack("<Q", 0),
        "empty": b"",
    }
    total = 0
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"wrote {len(seeds)} seeds, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
