// SpanSet and validSpans (src/store/spans.ts): the bookkeeping of which bytes of a blob landed, are
// missing or were recorded, on which a resumed download's trust rests.
import { describe, expect, it } from "vitest";
import { SpanSet, validSpans } from "../../src/store/spans.js";

describe("SpanSet", () => {
  it("keeps spans sorted and apart, joining those that overlap or touch, and ignores empty ones", () => {
    const set = new SpanSet([
      [50, 60],
      [10, 20],
    ]);
    set.add(30, 30);
    set.add(40, 35);
    expect(set.list()).toEqual([
      [10, 20],
      [50, 60],
    ]);
    set.add(20, 25); // touches the first
    set.add(45, 50); // touches the second from below
    set.add(58, 70); // overlaps its end
    expect(set.list()).toEqual([
      [10, 25],
      [45, 70],
    ]);
    expect(set.size).toBe(2);
    expect(set.bytes).toBe(15 + 25);
    set.add(0, 100);
    expect(set.list()).toEqual([[0, 100]]);
    expect(new SpanSet().list()).toEqual([]);
  });

  it("says which bytes it holds: from a span's start, not at its end", () => {
    const set = new SpanSet([
      [10, 20],
      [30, 40],
    ]);
    expect([9, 10, 19, 20, 25, 29, 30, 39, 40].map((at) => set.has(at))).toEqual([
      false,
      true,
      true,
      false,
      false,
      false,
      true,
      true,
      false,
    ]);
  });

  it("takes a part of one span only when that span holds all of it", () => {
    const set = new SpanSet([
      [10, 20],
      [30, 40],
    ]);
    expect(set.take(12, 15)).toBe(true);
    expect(set.list()).toEqual([
      [10, 12],
      [15, 20],
      [30, 40],
    ]);
    expect(set.take(18, 32)).toBe(false); // across a hole
    expect(set.take(5, 11)).toBe(false); // before a span
    expect(set.take(35, 35)).toBe(false); // nothing
    expect(set.take(30, 40)).toBe(true);
    expect(set.list()).toEqual([
      [10, 12],
      [15, 20],
    ]);
    expect(set.takeAt(15)).toEqual([15, 20]);
    expect(set.takeAt(11)).toBeUndefined();
    expect(set.list()).toEqual([[10, 12]]);
  });

  it("lists the holes of a range: between, before and after its spans, and none where it is covered", () => {
    const set = new SpanSet([
      [10, 20],
      [30, 40],
    ]);
    expect(set.holes(0, 50)).toEqual([
      [0, 10],
      [20, 30],
      [40, 50],
    ]);
    expect(set.holes(10, 40)).toEqual([[20, 30]]);
    expect(set.holes(12, 18)).toEqual([]);
    expect(set.holes(20, 30)).toEqual([[20, 30]]);
    expect(set.holes(15, 35)).toEqual([[20, 30]]);
    expect(set.holes(40, 45)).toEqual([[40, 45]]);
    expect(new SpanSet().holes(5, 9)).toEqual([[5, 9]]);
  });
});

describe("validSpans", () => {
  it("keeps spans that are whole numbers, sorted, apart and inside the range", () => {
    expect(
      validSpans(
        [
          [10, 20],
          [21, 30],
        ],
        10,
        30,
      ),
    ).toEqual([
      [10, 20],
      [21, 30],
    ]);
    expect(validSpans([], 0, 10)).toEqual([]);
    expect(validSpans(undefined, 0, 10)).toEqual([]);
  });

  it("refuses all of them for one that touches, overlaps, is out of order, empty, outside or not a pair of integers", () => {
    const bad: unknown[] = [
      [
        [10, 20],
        [20, 30],
      ], // touching: a record never holds these apart
      [
        [10, 20],
        [19, 30],
      ],
      [
        [21, 30],
        [10, 20],
      ],
      [[15, 15]],
      [[5, 20]], // before `from`
      [[10, 31]], // past `to`
      [[10.5, 20]],
      [[10, "20"]],
      [[10]],
      ["10-20"],
      [null],
      "[[10, 20]]",
    ];
    for (const spans of bad) expect(validSpans(spans as [number, number][], 10, 30)).toEqual([]);
  });
});
