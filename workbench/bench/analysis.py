"""How long an analysis page takes for a full-size dev set.

    python -m workbench.bench.analysis [--examples 10000] [--tasks mnli,stsb,squad2,conll2003]

Writes, per task, a synthetic dev set in the official file format and a run
directory with prediction files in the format the task writes (random but
well-formed: ~70% correct), then times `analyze_run` (reading, aligning,
scoring, figures; classification confidences given as probabilities, since
the model pass is inference, not page building) and `write_html`. The target
is under 10 seconds per 10,000-example page on a 2-core CPU.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

WORDS = (
    "the cat dog bird fox owl sat ran slept ate in on under near garden river market station barn forest "
    "morning evening every never Alice Ivan Chen Lena Paris Oslo Lima Globex Initech Acme"
).split()


def _sentence(rng, n=12):
    return " ".join(rng.choice(WORDS, n))


def make_mnli(rng, data_dir, run_dir, n):
    """dev_matched.tsv (MNLI's 12 columns) and the run's predictions; probabilities."""
    labels = ("contradiction", "entailment", "neutral")
    gold = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, 3, n))
    rows = ["index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label"]
    rows += [
        f"{i}\t0\t0\tfiction\t-\t-\t-\t-\t{_sentence(rng)}\t{_sentence(rng, 8)}\t-\t{labels[g]}"
        for i, g in enumerate(gold)
    ]
    _write(os.path.join(data_dir, "mnli", "dev_matched.tsv"), rows)
    preds = ["index\tprediction"] + [f"{i}\t{labels[p]}" for i, p in enumerate(pred)]
    _write(os.path.join(run_dir, "predictions", "mnli_dev_matched_predictions.tsv"), preds)
    probabilities = rng.dirichlet(np.ones(3), n)
    probabilities[np.arange(n), pred] += 1.0
    return {"dev_matched": probabilities / probabilities.sum(-1, keepdims=True)}


def make_stsb(rng, data_dir, run_dir, n):
    gold = rng.uniform(0, 5, n)
    pred = np.clip(gold + rng.normal(0, 1, n), 0, 5)
    rows = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"]
    rows += [f"{i}\tmain\tf\t2012\t0\ts\ts\t{_sentence(rng)}\t{_sentence(rng)}\t{g:.3f}" for i, g in enumerate(gold)]
    _write(os.path.join(data_dir, "stsb", "dev.tsv"), rows)
    _write(
        os.path.join(run_dir, "predictions", "stsb_dev_predictions.tsv"),
        ["index\tprediction"] + [f"{i}\t{p:.3f}" for i, p in enumerate(pred)],
    )
    return {}


def make_squad2(rng, data_dir, run_dir, n, per_context=5):
    """dev-v2.0.json with n questions (a third unanswerable) and predictions.json,
    nbest_predictions.json, null_odds.json."""
    questions = ("What", "Who", "When", "Where", "Which", "Why", "How", "In what")
    articles, predictions, nbest, odds = [], {}, {}, {}
    for start in range(0, n, per_context):
        words = list(rng.choice(WORDS, 120))
        context = " ".join(words)
        qas = []
        for q in range(start, min(n, start + per_context)):
            qid = f"q{q}"
            impossible = rng.random() < 1 / 3
            a = int(rng.integers(0, 115))
            answer = " ".join(words[a : a + int(rng.integers(1, 5))])
            offset = len(" ".join(words[:a])) + (1 if a else 0)
            qas.append(
                {
                    "id": qid,
                    "question": f"{questions[q % len(questions)]} {_sentence(rng, 6)}?",
                    "answers": [] if impossible else [{"text": answer, "answer_start": offset}],
                    "is_impossible": impossible,
                }
            )
            guess = answer if rng.random() < 0.6 else " ".join(words[a + 1 : a + 3])
            diff = float(rng.normal(1.0 if impossible else -1.0, 1.5))
            predictions[qid] = "" if diff > 0 else guess
            nbest[qid] = [{"text": guess, "probability": 0.6}, {"text": "", "probability": 0.4}]
            odds[qid] = diff
        articles.append({"title": f"a{start}", "paragraphs": [{"context": context, "qas": qas}]})
    _write(os.path.join(data_dir, "squad2", "dev-v2.0.json"), [json.dumps({"version": "v2.0", "data": articles})])
    for name, value in (("predictions", predictions), ("nbest_predictions", nbest), ("null_odds", odds)):
        _write(os.path.join(run_dir, "predictions", f"{name}.json"), [json.dumps(value)])
    return {}


def make_conll(rng, data_dir, run_dir, n):
    """eng.testa with n sentences (IOB1 as distributed) and the run's word/gold/predicted file."""
    types = ("PER", "ORG", "LOC", "MISC")
    data, predicted = ["-DOCSTART- -X- -X- O", ""], []
    for _ in range(n):
        length = int(rng.integers(6, 15))
        tags = ["O"] * length
        for start in rng.choice(length - 2, 2, replace=False):
            kind = types[rng.integers(0, 4)]
            tags[start] = tags[start + 1] = f"I-{kind}"
        words = list(rng.choice(WORDS, length))
        data += [f"{w} NN I-NP {t}" for w, t in zip(words, tags)] + [""]
        from workbench.tasks.ner import iob1_to_iob2

        gold = iob1_to_iob2(tags)
        pred = [t if rng.random() < 0.9 else "O" for t in gold]
        predicted += [f"{w} {g} {p}" for w, g, p in zip(words, gold, pred)] + [""]
    _write(os.path.join(data_dir, "conll2003", "eng.testa"), data)
    _write(os.path.join(run_dir, "predictions", "conll2003_dev_predictions.txt"), predicted)
    return {}


MAKERS = {"mnli": make_mnli, "stsb": make_stsb, "squad2": make_squad2, "conll2003": make_conll}


def _write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def bench(tasks=tuple(MAKERS), examples=10_000, seed=0, log=print):
    """{task: (analysis seconds, write_html seconds, CPU seconds of both)}. Libraries and
    task modules are imported before timing: in a notebook they already are."""
    import plotly.graph_objects  # noqa: F401
    import seqeval.metrics  # noqa: F401
    import sklearn.metrics  # noqa: F401

    from workbench.explore import analysis as A
    from workbench.tasks.registry import get_task

    results = {}
    with tempfile.TemporaryDirectory(prefix="wb-bench-analysis-") as root:
        for name in tasks:
            rng = np.random.default_rng(seed)
            data_dir, run_dir = os.path.join(root, "data"), os.path.join(root, "runs", name)
            probabilities = MAKERS[name](rng, data_dir, run_dir, examples)
            task = get_task(name)
            started, cpu = time.perf_counter(), time.process_time()
            if probabilities:  # what analyze_run does after the model pass
                data = {}
                for split in probabilities:
                    predictions = A.read_predictions(task, run_dir, split)
                    split_examples = task.load(data_dir, split)
                    A.check_alignment(task, split_examples, predictions, A.prediction_file(task, run_dir, split))
                    data[split] = (split_examples, predictions)
                sections, mistakes = A.classification_sections(task, data, probabilities, data_dir=data_dir)
                analysis = A.RunAnalysis(task, run_dir, sections, mistakes)
            else:
                analysis = A.analyze_run(run_dir, task, data_dir, confidences=False)
            built = time.perf_counter()
            path = analysis.write_html()
            written, cpu = time.perf_counter(), time.process_time() - cpu
            results[name] = (built - started, written - built, cpu)
            size = os.path.getsize(path) / 1e6
            log(
                f"{name}: {examples} examples, analysis {built - started:.2f} s, page {written - built:.2f} s, "
                f"total {written - started:.2f} s, CPU {cpu:.2f} s ({size:.1f} MB, {len(analysis.figures)} figures)"
            )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--tasks", default=",".join(MAKERS), help=f"comma-separated, from {', '.join(MAKERS)}")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in MAKERS]
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; choose from {', '.join(MAKERS)}")
    bench(tasks, args.examples)


if __name__ == "__main__":
    main()
