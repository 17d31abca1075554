#!/usr/bin/python3
"""Writes bleu_golden.jsonl: sentence BLEU-1 / BLEU-4 cases scored by nltk 3.8 (Debian python3-nltk).

Run: /usr/bin/python3 tests/eval/data/make_bleu_golden.py > tests/eval/data/bleu_golden.jsonl
Tokens are text.lower().split(), as eval/metrics/bleu.h states; no smoothing; all references.
"""
import json
import random
import sys
import warnings
from fractions import Fraction

import nltk
from nltk.translate.bleu_score import closest_ref_length, brevity_penalty, modified_precision, sentence_bleu

assert nltk.__version__ == "3.8", nltk.__version__
warnings.simplefilter("ignore")  # method0 warns about orders without overlap

WORDS = ("the a of to in cat dog sat on mat Mary went back home after dinner with her brother who had "
         "been away for years The Cat MAT Straße ΟΔΥΣΣΕΥΣ naïve café , . ! ?").split()


def case(cid, prediction, references, n):
    hyp = prediction.lower().split()
    refs = [r.lower().split() for r in references]
    weights = (1.0 / n,) * n + (0.0,) * (4 - n)
    bleu = float(sentence_bleu(refs, hyp, weights=weights))
    ref_len = closest_ref_length(refs, len(hyp))
    expected = {"bleu": bleu, "brevity_penalty": float(brevity_penalty(ref_len, len(hyp))),
                "hyp_len": len(hyp), "ref_len": ref_len}
    for k in range(1, 5):
        expected["precision_%d" % k] = float(modified_precision(refs, hyp, k))
    return {"id": cid, "prediction": prediction, "references": references, "options": {"n": n},
            "expected": expected}


def main():
    rng = random.Random(2024)
    hand = [
        ("exact", "Mary went back home", ["mary went back home", "she returned"]),
        ("short-hyp", "home", ["Mary went back home", "home again"]),
        ("no-overlap", "dog barked", ["Mary went back home"]),
        ("empty-hyp", "", ["Mary went back home"]),
        ("empty-ref", "Mary", ["", "mary went"]),
        ("tie-closest", "a b c d e", ["a b c d", "a b c d e f"]),
        ("longer-hyp", "the cat sat on the mat with the dog", ["the cat sat on the mat"]),
        ("clip", "the the the the the the the", ["the cat is on the mat", "there is a cat on the mat"]),
        ("unicode", "ΟΔΥΣΣΕΥΣ went to the café", ["Odysseus went to the CAFÉ", "οδυσσευς went home"]),
        ("three-refs", "he left the house", ["he left", "he left the old house", "she left the house"]),
    ]
    cases = []
    for cid, p, refs in hand:
        for n in (1, 4):
            cases.append(case("hand-%s-bleu%d" % (cid, n), p, refs, n))
    for i in range(120):
        ref_words = [rng.choice(WORDS) for _ in range(rng.randint(0, 25))]
        refs = [" ".join(ref_words)]
        refs.append(" ".join(w for w in ref_words if rng.random() < 0.8))
        pred = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in ref_words if rng.random() < 0.9]
        if rng.random() < 0.3:
            pred += [rng.choice(WORDS) for _ in range(rng.randint(1, 5))]
        n = 1 if i % 2 else 4
        cases.append(case("random-%03d-bleu%d" % (i, n), " ".join(pred), refs, n))
    for c in cases:
        sys.stdout.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
