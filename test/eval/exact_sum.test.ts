import test from "ava";
import { ExactSum } from "../../lib/eval/exact_sum.js";
import { random } from "./helpers.js";

function exactSum(values: readonly number[]): number {
  const sum = new ExactSum();
  for (const value of values) sum.add(value);
  return sum.value();
}

test("sums that naive addition gets wrong come out exact (math.fsum's values)", (t) => {
  t.is(exactSum([1e16, 1, -1e16]), 1);
  t.is(exactSum([1, 1e100, 1, -1e100]), 2);
  t.is(exactSum(new Array(10).fill(0.1)), 1);
  t.is(exactSum([0.1, 0.2, 0.3]), 0.6);
  t.is(0.1 + 0.2 + 0.3, 0.6000000000000001);
  // Round half to even, decided by the terms below the tie: 1 + 2^-53 + 2^-105 rounds up.
  t.is(exactSum([1, 2 ** -53, 2 ** -105]), 1 + 2 ** -52);
  t.is(exactSum([1, 2 ** -53]), 1);
  t.is(exactSum([]), 0);
});

test("the result does not depend on the order of the terms", (t) => {
  const next = random(4);
  const values = Array.from({ length: 2000 }, () => (next() - 0.3) * 10 ** Math.floor(next() * 12 - 6));
  const reference = exactSum(values);
  for (let shuffle = 0; shuffle < 5; shuffle++) {
    const order = values.map((value) => ({ value, key: next() })).sort((a, b) => a.key - b.key).map(({ value }) => value);
    t.is(exactSum(order), reference);
  }
  let naive = 0;
  for (const value of values) naive += value;
  t.true(Math.abs(naive - reference) <= 1e-12 * Math.abs(reference));
});

test("infinities and NaN propagate as in ordinary addition", (t) => {
  t.is(exactSum([1, Infinity, 2]), Infinity);
  t.true(Number.isNaN(exactSum([Infinity, -Infinity])));
  t.true(Number.isNaN(exactSum([1, NaN])));
});
