"""The statistics of a trustworthy answer: the confirmation race and the winner-vs-baseline verdict.

Pure functions of per-seed accuracies and per-image test correctness; scipy does the
distributions. Two sources of noise are in play: the training seed (one design's final accuracy
spreads by 0.04-0.08 points) and the test set itself (about 0.08 points at 99.4% on 10,000
images). The interval over seeds answers the first, the paired test on test images the second.

Racing (successive rejection over seeds): every contender starts with the same first seeds; after
each round the leader on mean validation accuracy is found, and a contender whose validation mean
is below the leader's with one-sided Welch p < RACE_ALPHA stops; the ones still in contention,
leader included, get one more seed, up to the cap. So the winner always holds at least as many
seeds as any design it was compared with (RESULTS.md, "Racing confirmation").
"""

from __future__ import annotations

import base64
import math
import statistics
from collections.abc import Sequence

import numpy as np

RACE_ALPHA = 0.05  # one-sided Welch p below which a contender is clearly behind the leader
CONFIDENCE = 0.95  # of the intervals the verdict prints


def _stats():
    """scipy.stats, imported on first use: it takes about a second, which every `python -m search`
    run paid even when it compared nothing (a search without confirmation, a bad-input error)."""
    from scipy import stats

    return stats


# --- racing -------------------------------------------------------------------------------------

def behind_p(leader: Sequence[float], other: Sequence[float]) -> float:
    """One-sided Welch p-value of "other's mean is below the leader's" (1.0 where undefined)."""
    if len(leader) < 2 or len(other) < 2:
        return 1.0
    if statistics.pstdev(leader) == 0 and statistics.pstdev(other) == 0:  # no spread at all
        return 0.0 if statistics.fmean(other) < statistics.fmean(leader) else 1.0
    p = _stats().ttest_ind(leader, other, equal_var=False, alternative="greater").pvalue
    return float(p)


def race_round(finals: dict[int, list[float]], out: set[int], cap: int, alpha: float = RACE_ALPHA) -> list[int]:
    """One round of the race. `finals`: each contender's validation accuracy per seed so far;
    `out`: contenders already stopped (updated in place). Returns the contenders that get one more
    seed: those still in contention, leader included, below the cap; [] when the race is over."""
    alive = [d for d in finals if d not in out]
    if len(alive) < 2:
        return []
    leader = max(alive, key=lambda d: statistics.fmean(finals[d]))
    for d in alive:
        if d != leader and behind_p(finals[leader], finals[d]) < alpha:
            out.add(d)
    alive = [d for d in alive if d not in out]
    if len(alive) < 2:
        return []
    return [d for d in alive if len(finals[d]) < cap]


# --- the verdict --------------------------------------------------------------------------------

def diff_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t interval over seeds; (diff, nan, nan) with < 2 seeds a side."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan"), float("nan")
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return diff, diff, diff
    ci = _stats().ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high)


def paired_interval(diffs: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of seed-matched differences and its paired t interval; (mean, nan, nan) with < 2 pairs."""
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    if statistics.pstdev(diffs) == 0:
        return mean, mean, mean
    ci = _stats().ttest_1samp(diffs, 0.0).confidence_interval(confidence)
    return mean, float(ci.low), float(ci.high)


def mcnemar(a_correct: Sequence[np.ndarray], b_correct: Sequence[np.ndarray]) -> dict:
    """Exact McNemar test on seed-matched models: seed s of one design against seed s of the other,
    over the same test images. b = images only `a` gets right, c = only `b`; the discordant counts
    of all seed pairs are pooled into one exact binomial test of b against b + c at 1/2. Pooling
    treats the pairs as independent; the same hard images flip in every seed, so p is optimistic
    when the seeds agree, which is why the verdict also needs the interval over seeds."""
    pairs = min(len(a_correct), len(b_correct))
    b = sum(int(np.sum(a_correct[s] & ~b_correct[s])) for s in range(pairs))
    c = sum(int(np.sum(~a_correct[s] & b_correct[s])) for s in range(pairs))
    p = float(_stats().binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return {"only_a": b, "only_b": c, "pairs": pairs, "p": p}


def call(test_ci: tuple[float, float], p: float, alpha: float = 1 - CONFIDENCE) -> str:
    """The words: a lead (or a deficit) is measurable when both the interval over seeds excludes
    zero and the paired test on the test images rejects equality."""
    lo, hi = test_ci
    if lo > 0 and p < alpha:
        return "a measurable lead"
    if hi < 0 and p < alpha:
        return "measurably behind"
    return "not a measurable difference"


def compare(a: dict, b: dict) -> dict:
    """The verdict of design a against design b from their confirm records (val_acc / test_acc
    curves per seed, test_correct bit strings per seed)."""
    val = diff_interval([c[-1] for c in a["val_acc"]], [c[-1] for c in b["val_acc"]])
    test = diff_interval([c[-1] for c in a["test_acc"]], [c[-1] for c in b["test_acc"]])
    m = mcnemar([unpack(x) for x in a.get("test_correct", [])], [unpack(x) for x in b.get("test_correct", [])])
    return {"val_diff": round(val[0], 4), "val_ci": [round(val[1], 4), round(val[2], 4)],
            "test_diff": round(test[0], 4), "test_ci": [round(test[1], 4), round(test[2], 4)],
            "mcnemar": m, "seeds": [len(a["test_acc"]), len(b["test_acc"])],
            "call": call((test[1], test[2]), m["p"])}


def _interval(lo: float, hi: float, label: str = "") -> str:
    return "no interval with one seed a side" if math.isnan(lo) else f"{label}{lo:+.2f}..{hi:+.2f}"


def format_line(v: dict) -> str:
    """`winner (trial 42) vs seed-004: +0.06 test (95% CI -0.02..+0.14, McNemar p=0.31): ...`"""
    m = v["mcnemar"]
    return (f"{v['a_label']} vs {v['b_label']}: {v['test_diff']:+.2f} test "
            f"({_interval(*v['test_ci'], f'{CONFIDENCE:.0%} CI ')}, McNemar p={m['p']:.2g} over {m['pairs']} seed "
            f"pairs): {v['call']}; validation {v['val_diff']:+.2f} ({_interval(*v['val_ci'])}); "
            f"seeds {v['seeds'][0]} vs {v['seeds'][1]}")


# --- per-image correctness, stored compactly ----------------------------------------------------

def pack(correct: np.ndarray) -> str:
    """A boolean vector as base64 of its bits (10,000 test images -> 1,668 characters)."""
    return base64.b64encode(np.packbits(correct.astype(bool)).tobytes()).decode() + f":{len(correct)}"


def unpack(text: str) -> np.ndarray:
    data, n = text.rsplit(":", 1)
    return np.unpackbits(np.frombuffer(base64.b64decode(data), dtype=np.uint8))[: int(n)].astype(bool)
