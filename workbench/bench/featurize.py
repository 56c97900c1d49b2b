"""Benchmark: featurize a SQuAD-v1.1-sized input (made synthetically).

SQuAD v1.1 train has 87,599 questions over 18,896 paragraphs of about 120
words; the synthetic set has the same counts, words drawn from the vocabulary
(with accents and punctuation mixed in so the slow, exact Unicode paths run
too). Reports questions and windows per second.
"""

import random
import time

from workbench.tasks.squad import SquadExample, SquadTask


def synthetic_squad(vocabulary, questions=87_599, paragraphs=18_896, words_per_paragraph=120, seed=0):
    rnd = random.Random(seed)
    words = [w for w in vocabulary if w.isalpha() and not w.startswith("[")] or ["word"]
    extras = ["café", "naïve", "(1990)", "U.S.", "—", "3.5%", "Zürich", "“quoted”"]
    contexts = []
    for _ in range(paragraphs):
        chosen = [rnd.choice(words) if rnd.random() > 0.05 else rnd.choice(extras) for _ in range(words_per_paragraph)]
        contexts.append(" ".join(chosen) + ".")
    examples = []
    for i in range(questions):
        context = contexts[i * paragraphs // questions]
        answer_start = context.index(" ", len(context) // 2) + 1
        answer = context[answer_start : context.index(" ", answer_start)]
        question = " ".join(rnd.choice(words) for _ in range(rnd.randint(6, 14))) + "?"
        examples.append(SquadExample(str(i), question, context, [answer], answer_start))
    return examples


def run(tokenizer, questions=87_599, workers=None, max_seq_length=384):
    paragraphs = max(1, round(questions * 18_896 / 87_599))
    examples = synthetic_squad(tokenizer.get_vocabulary(), questions, paragraphs)
    task = SquadTask("1.1")
    start = time.perf_counter()
    features = task.featurize(examples, tokenizer, max_seq_length, training=True, workers=workers)
    seconds = time.perf_counter() - start
    return {
        "questions": len(examples),
        "windows": len(features),
        "seconds": seconds,
        "questions_per_second": len(examples) / seconds,
    }
