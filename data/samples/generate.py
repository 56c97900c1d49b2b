"""Write the embedded benchmark samples: our own sentences, each benchmark's
official file layout and format, labels balanced and learnable from the words.

    python data/samples/generate.py        # rewrites data/samples/<task>/

The output is committed; rerunning gives identical files (fixed seed).
"""

import csv
import io
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
R = random.Random(2018)

NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena"]
CITIES = ["Paris", "Nairobi", "Lima", "Oslo", "Kyoto", "Cairo", "Quito", "Dublin", "Hanoi", "Perth"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Mills", "Wayne Foods"]
ANIMALS = ["cat", "dog", "horse", "parrot", "rabbit", "goat", "fox", "owl"]
PLACES = ["garden", "kitchen", "barn", "river", "market", "library", "station", "forest"]
VERBS = ["sleeps", "waits", "plays", "eats", "sings", "runs", "reads", "rests"]
GOOD = ["wonderful", "brilliant", "moving", "delightful", "charming", "superb", "joyful", "clever"]
BAD = ["dull", "boring", "clumsy", "tedious", "awful", "bland", "painful", "messy"]
THINGS = ["film", "story", "plot", "cast", "script", "ending", "music", "acting"]


def write(path, text):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def tsv(rows, header=None):
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
    return "\n".join(lines) + "\n"


def simple_sentence():
    return f"the {R.choice(ANIMALS)} {R.choice(VERBS)} in the {R.choice(PLACES)}"


def balanced(n, labels):
    out = [labels[i % len(labels)] for i in range(n)]
    R.shuffle(out)
    return out


SIZES = {"train": 48, "dev": 24, "test": 16}


# ---- GLUE single sentence ------------------------------------------------------------
def cola():
    for split in ("train", "dev"):
        rows = []
        for label in balanced(SIZES[split], [0, 1]):
            words = simple_sentence().split()
            if label == 0:  # scramble: unacceptable word order
                R.shuffle(words)
                words = words[::-1] if words[0] == "the" else words
            rows.append(("gj04", label, "" if label else "*", " ".join(words).capitalize() + "."))
        write(f"cola/{split}.tsv", tsv(rows))  # no header, as distributed
    write(
        "cola/test.tsv",
        tsv([(i, simple_sentence().capitalize() + ".") for i in range(SIZES["test"])], ["index", "sentence"]),
    )


def sst2():
    def review(label):
        word = R.choice(GOOD if label else BAD)
        return f"the {R.choice(THINGS)} is {word} and {R.choice(GOOD if label else BAD)} "

    for split in ("train", "dev"):
        write(f"sst2/{split}.tsv", tsv([(review(l), l) for l in balanced(SIZES[split], [0, 1])], ["sentence", "label"]))
    write("sst2/test.tsv", tsv([(i, review(R.randint(0, 1))) for i in range(SIZES["test"])], ["index", "sentence"]))


# ---- GLUE pairs ---------------------------------------------------------------------
SYNONYMS = {
    "sleeps": "naps",
    "waits": "lingers",
    "plays": "frolics",
    "eats": "dines",
    "sings": "chants",
    "runs": "sprints",
    "reads": "studies",
    "rests": "relaxes",
}


def paraphrase_pair(label):
    a = simple_sentence()
    if label:
        b = " ".join(SYNONYMS.get(w, w) for w in a.split())
    else:
        b = simple_sentence()
        while b.split()[1] == a.split()[1]:
            b = simple_sentence()
    return a.capitalize() + ".", b.capitalize() + "."


def mrpc():
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    for split in ("train", "dev"):
        rows = []
        for i, label in enumerate(balanced(SIZES[split], [0, 1])):
            a, b = paraphrase_pair(label)
            rows.append((label, 1000 + i, 2000 + i, a, b))
        write(f"mrpc/{split}.tsv", tsv(rows, header))
    rows = [(i, 3000 + i, 4000 + i, *paraphrase_pair(R.randint(0, 1))) for i in range(SIZES["test"])]
    write("mrpc/test.tsv", tsv(rows, ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]))


def qqp():
    def question(label):
        a, b = paraphrase_pair(label)
        return "Why " + a[0].lower() + a[1:-1] + "?", "Why " + b[0].lower() + b[1:-1] + "?"

    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    for split in ("train", "dev"):
        rows = [(i, 2 * i, 2 * i + 1, *question(l), l) for i, l in enumerate(balanced(SIZES[split], [0, 1]))]
        if split == "train":
            rows.append((len(rows), 999, "Why is this row broken"))  # the real file has such rows; skipped and counted
        write(f"qqp/{split}.tsv", tsv(rows, header))
    write(
        "qqp/test.tsv",
        tsv([(i, *question(R.randint(0, 1))) for i in range(SIZES["test"])], ["id", "question1", "question2"]),
    )


def stsb():
    header = [
        "index",
        "genre",
        "filename",
        "year",
        "old_index",
        "source1",
        "source2",
        "sentence1",
        "sentence2",
        "score",
    ]

    def pair():
        a = simple_sentence().split()
        kind = R.choice(["same", "half", "other"])
        if kind == "same":
            b, score = list(a), 5.0 - R.choice([0.0, 0.2, 0.4])
        elif kind == "half":
            b = list(a)
            b[1] = R.choice(ANIMALS)
            b[-1] = R.choice(PLACES)
            score = 2.6 + R.choice([-0.4, 0.0, 0.4])
        else:
            b, score = (
                f"{R.choice(NAMES)} visited {R.choice(CITIES)} last {R.choice(['week', 'year'])}".split(),
                R.choice([0.0, 0.2, 0.6]),
            )
        return " ".join(a).capitalize() + ".", " ".join(b).capitalize() + ".", f"{score:.3f}"

    for split in ("train", "dev"):
        rows = [
            (i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", *pair()) for i in range(SIZES[split])
        ]
        write(f"stsb/{split}.tsv", tsv(rows, header))
    rows = [
        (i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", *pair()[:2])
        for i in range(SIZES["test"])
    ]
    write("stsb/test.tsv", tsv(rows, header[:-1]))


def nli_pair(label):
    """(premise, hypothesis) for entailment / neutral / contradiction."""
    name, animal, place, verb = R.choice(NAMES), R.choice(ANIMALS), R.choice(PLACES), R.choice(VERBS)
    premise = f"{name}'s {animal} {verb} in the {place} every morning."
    if label == "entailment":
        hypothesis = f"{name}'s {animal} {verb} in the {place}."
    elif label == "contradiction":
        hypothesis = f"{name}'s {animal} never {verb[:-1]} in the {place}."
    else:
        hypothesis = f"{name}'s {animal} {verb} in the {place} because it is {R.choice(['tired', 'hungry', 'happy'])}."
    return premise, hypothesis


NLI = ["contradiction", "entailment", "neutral"]


def mnli():
    head = [
        "index",
        "promptID",
        "pairID",
        "genre",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
    ]
    rows = []
    for i, label in enumerate(balanced(SIZES["train"], NLI)):
        p, h = nli_pair(label)
        rows.append((i, i, f"{i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", p, h, label, label))
    write("mnli/train.tsv", tsv(rows, head + ["label1", "gold_label"]))
    for name, genre in (("dev_matched", "fiction"), ("dev_mismatched", "letters")):
        rows = []
        for i, label in enumerate(balanced(SIZES["dev"], NLI)):
            p, h = nli_pair(label)
            rows.append(
                (
                    i,
                    i,
                    f"{i}n",
                    genre,
                    "( x )",
                    "( y )",
                    "(ROOT x)",
                    "(ROOT y)",
                    p,
                    h,
                    label,
                    label,
                    label,
                    label,
                    label,
                    label,
                )
            )
        write(f"mnli/{name}.tsv", tsv(rows, head + ["label1", "label2", "label3", "label4", "label5", "gold_label"]))
    for name, genre in (("test_matched", "fiction"), ("test_mismatched", "letters")):
        rows = [
            (i, i, f"{i}t", genre, "( x )", "( y )", "(ROOT x)", "(ROOT y)", *nli_pair(R.choice(NLI)))
            for i in range(SIZES["test"])
        ]
        write(f"mnli/{name}.tsv", tsv(rows, head))


def ax():
    rows = [(i, *nli_pair(R.choice(NLI))) for i in range(SIZES["test"])]
    write("ax/diagnostic.tsv", tsv(rows, ["index", "sentence1", "sentence2"]))
    full = []
    for label in balanced(SIZES["test"], NLI):
        p, h = nli_pair(label)
        full.append(("Negation" if label == "contradiction" else "", "", "", "", "Artificial", p, h, label))
    write(
        "ax/diagnostic-full.tsv",
        tsv(
            full,
            [
                "Lexical Semantics",
                "Predicate-Argument Structure",
                "Logic",
                "Knowledge",
                "Domain",
                "Premise",
                "Hypothesis",
                "Label",
            ],
        ),
    )


def qnli_pair(label):
    name, city = R.choice(NAMES), R.choice(CITIES)
    question = f"Where does {name} live?"
    if label == "entailment":
        sentence = f"{name} lives in {city} with a {R.choice(ANIMALS)}."
    else:
        sentence = f"{R.choice([n for n in NAMES if n != name])} likes the {R.choice(THINGS)} a lot."
    return question, sentence


def qnli():
    for split in ("train", "dev"):
        rows = [(i, *qnli_pair(l), l) for i, l in enumerate(balanced(SIZES[split], ["entailment", "not_entailment"]))]
        write(f"qnli/{split}.tsv", tsv(rows, ["index", "question", "sentence", "label"]))
    write(
        "qnli/test.tsv",
        tsv([(i, *qnli_pair("entailment")) for i in range(SIZES["test"])], ["index", "question", "sentence"]),
    )


def rte():
    for split in ("train", "dev"):
        rows = []
        for i, l in enumerate(balanced(SIZES[split], ["entailment", "not_entailment"])):
            p, h = nli_pair("entailment" if l == "entailment" else "contradiction")
            rows.append((i, p, h, l))
        write(f"rte/{split}.tsv", tsv(rows, ["index", "sentence1", "sentence2", "label"]))
    write(
        "rte/test.tsv",
        tsv([(i, *nli_pair("neutral")) for i in range(SIZES["test"])], ["index", "sentence1", "sentence2"]),
    )


def wnli():
    def pair(label):
        a, b = R.sample(NAMES, 2)
        premise = f"{a} thanked {b} because he helped him."
        return premise, (f"{b} helped {a}." if label else f"{a} helped {b}.")

    for split in ("train", "dev"):
        rows = [(i, *pair(l), l) for i, l in enumerate(balanced(SIZES[split], [0, 1]))]
        write(f"wnli/{split}.tsv", tsv(rows, ["index", "sentence1", "sentence2", "label"]))
    write("wnli/test.tsv", tsv([(i, *pair(1)) for i in range(SIZES["test"])], ["index", "sentence1", "sentence2"]))


# ---- XNLI -------------------------------------------------------------------------
# (premise, entailed, contradicted, neutral hypothesis) in the 15 XNLI languages; dev and test hold
# all three labels in every language, so per-language accuracy is not blind to a class.
XNLI_PHRASES = {
    "ar": (
        "القط ينام في الحديقة كل صباح.",
        "القط ينام في الحديقة.",
        "القط لا ينام أبدا.",
        "القط ينام في الحديقة لأنه متعب.",
    ),
    "bg": (
        "Котката спи в градината всяка сутрин.",
        "Котката спи в градината.",
        "Котката никога не спи.",
        "Котката спи в градината, защото е уморена.",
    ),
    "de": (
        "Die Katze schläft jeden Morgen im Garten.",
        "Die Katze schläft im Garten.",
        "Die Katze schläft nie.",
        "Die Katze schläft im Garten, weil sie müde ist.",
    ),
    "el": (
        "Η γάτα κοιμάται στον κήπο κάθε πρωί.",
        "Η γάτα κοιμάται στον κήπο.",
        "Η γάτα δεν κοιμάται ποτέ.",
        "Η γάτα κοιμάται στον κήπο επειδή είναι κουρασμένη.",
    ),
    "en": (
        "The cat sleeps in the garden every morning.",
        "The cat sleeps in the garden.",
        "The cat never sleeps.",
        "The cat sleeps in the garden because it is tired.",
    ),
    "es": (
        "El gato duerme en el jardín cada mañana.",
        "El gato duerme en el jardín.",
        "El gato nunca duerme.",
        "El gato duerme en el jardín porque está cansado.",
    ),
    "fr": (
        "Le chat dort dans le jardin chaque matin.",
        "Le chat dort dans le jardin.",
        "Le chat ne dort jamais.",
        "Le chat dort dans le jardin parce qu'il est fatigué.",
    ),
    "hi": (
        "बिल्ली हर सुबह बगीचे में सोती है।",
        "बिल्ली बगीचे में सोती है।",
        "बिल्ली कभी नहीं सोती।",
        "बिल्ली बगीचे में सोती है क्योंकि वह थकी हुई है।",
    ),
    "ru": (
        "Кошка спит в саду каждое утро.",
        "Кошка спит в саду.",
        "Кошка никогда не спит.",
        "Кошка спит в саду, потому что устала.",
    ),
    "sw": (
        "Paka hulala bustanini kila asubuhi.",
        "Paka hulala bustanini.",
        "Paka halali kamwe.",
        "Paka hulala bustanini kwa sababu amechoka.",
    ),
    "th": ("แมวนอนในสวนทุกเช้า", "แมวนอนในสวน", "แมวไม่เคยนอน", "แมวนอนในสวนเพราะมันเหนื่อย"),
    "tr": (
        "Kedi her sabah bahçede uyur.",
        "Kedi bahçede uyur.",
        "Kedi asla uyumaz.",
        "Kedi yorgun olduğu için bahçede uyur.",
    ),
    "ur": (
        "بلی ہر صبح باغ میں سوتی ہے۔",
        "بلی باغ میں سوتی ہے۔",
        "بلی کبھی نہیں سوتی۔",
        "بلی باغ میں سوتی ہے کیونکہ وہ تھکی ہوئی ہے۔",
    ),
    "vi": (
        "Con mèo ngủ trong vườn mỗi sáng.",
        "Con mèo ngủ trong vườn.",
        "Con mèo không bao giờ ngủ.",
        "Con mèo ngủ trong vườn vì nó mệt.",
    ),
    "zh": ("猫每天早上在花园里睡觉。", "猫在花园里睡觉。", "猫从不睡觉。", "猫在花园里睡觉，因为它累了。"),
}


def xnli():
    header = [
        "language",
        "gold_label",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
        "promptID",
        "pairID",
        "genre",
        "label1",
        "label2",
        "label3",
        "label4",
        "label5",
        "sentence1_tokenized",
        "sentence2_tokenized",
        "match",
    ]
    for split, n in (("dev", 3), ("test", 3)):
        rows = []
        for lang, (p, yes, no, maybe) in XNLI_PHRASES.items():
            for j in range(n):
                label = ["entailment", "contradiction", "neutral"][j % 3]
                h = {"entailment": yes, "contradiction": no, "neutral": maybe}[label]
                rows.append(
                    (
                        lang,
                        label,
                        "",
                        "",
                        "",
                        "",
                        p,
                        h,
                        j,
                        f"{j}{lang}",
                        "fiction",
                        label,
                        label,
                        label,
                        label,
                        label,
                        p,
                        h,
                        "True",
                    )
                )
        write(f"xnli/xnli.{split}.tsv", tsv(rows, header))
    for lang in ("en", "zh"):
        rows = []
        for label in balanced(SIZES["train"], ["entailment", "contradictory", "neutral"]):
            if lang == "en":
                p, h = nli_pair("contradiction" if label == "contradictory" else label)
            else:
                p, yes, no, maybe = XNLI_PHRASES["zh"]
                h = {"entailment": yes, "contradictory": no, "neutral": maybe}[label]
            rows.append((p, h, label))
        write(f"xnli/multinli.train.{lang}.tsv", tsv(rows, ["premise", "hypo", "label"]))


# ---- SQuAD ----------------------------------------------------------------------------
def squad_paragraph(qid_prefix, impossible_share=0.0):
    name, city, org, animal = R.choice(NAMES), R.choice(CITIES), R.choice(ORGS), R.choice(ANIMALS)
    year = R.randint(1950, 2015)
    context = (
        f"{name} was born in {city} in {year}. After school, {name} joined {org}, "
        f"where the team built tools for farmers. {name} keeps a {animal} named Pip."
    )
    qas = []
    questions = [
        (f"Where was {name} born?", city),
        (f"In which year was {name} born?", str(year)),
        (f"Which company did {name} join?", org),
        (f"What animal does {name} keep?", animal),
    ]
    for k, (q, answer) in enumerate(questions):
        qid = f"{qid_prefix}{k}"
        if R.random() < impossible_share:
            other = R.choice([n for n in NAMES if n != name])
            qas.append(
                {
                    "id": qid,
                    "question": q.replace(name, other),
                    "answers": [],
                    "is_impossible": True,
                    "plausible_answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
            )
        else:
            entry = {"id": qid, "question": q, "answers": [{"text": answer, "answer_start": context.index(answer)}]}
            if impossible_share:
                entry["is_impossible"] = False
            qas.append(entry)
    return {"context": context, "qas": qas}


def squad():
    for version, share in (("1.1", 0.0), ("2.0", 0.4)):
        task = "squad1" if version == "1.1" else "squad2"
        for split, n_par in (("train", 12), ("dev", 6)):
            articles = []
            for a in range(3):
                paragraphs = [squad_paragraph(f"{split}{version[0]}{a:02d}{p:02d}", share) for p in range(n_par // 3)]
                articles.append({"title": f"Person_{a}", "paragraphs": paragraphs})
            if split == "dev":  # the official dev set has several answers per question
                for article in articles:
                    for paragraph in article["paragraphs"]:
                        for qa in paragraph["qas"]:
                            if qa["answers"]:
                                qa["answers"] = qa["answers"] * 3
            write(
                f"{task}/{split}-v{version}.json",
                json.dumps({"version": f"v{version}", "data": articles}, ensure_ascii=False, indent=1) + "\n",
            )


# ---- SWAG -------------------------------------------------------------------------------
def swag():
    header = [
        "",
        "video-id",
        "fold-ind",
        "startphrase",
        "sent1",
        "sent2",
        "gold-source",
        "ending0",
        "ending1",
        "ending2",
        "ending3",
        "label",
    ]
    follow = {
        "sleeps": "closes its eyes",
        "eats": "chews the food",
        "runs": "moves very fast",
        "sings": "makes a sweet sound",
        "reads": "turns a page",
        "plays": "chases a ball",
        "waits": "stays by the door",
        "rests": "lies down quietly",
    }
    verbs = list(follow)

    def example(label):
        animal, verb = R.choice(ANIMALS), R.choice(verbs)
        sent1, sent2 = f"The {animal} {verb} in the {R.choice(PLACES)}.", f"The {animal}"
        wrong = [follow[v] for v in R.sample([v for v in verbs if v != verb], 3)]
        endings = wrong[:label] + [follow[verb] + "."] + wrong[label:]
        endings = [e if e.endswith(".") else e + "." for e in endings]
        return sent1, sent2, endings

    for split, name in (("train", "train"), ("dev", "val"), ("test", "test")):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header if split != "test" else header[:-1])
        for i, label in enumerate(balanced(SIZES[split], [0, 1, 2, 3])):
            sent1, sent2, endings = example(label)
            row = [i, f"anetv_{i:05d}", i, f"{sent1} {sent2}", sent1, sent2, "gold", *endings]
            writer.writerow(row + ([label] if split != "test" else []))
        write(f"swag/{name}.csv", out.getvalue())


# ---- CoNLL-2003 ---------------------------------------------------------------------------
def conll():
    pos = {"PER": "NNP", "LOC": "NNP", "ORG": "NNP"}

    def sentence():
        kind = R.randint(0, 2)
        a, b = R.sample(NAMES, 2)
        city, org = R.choice(CITIES), R.choice(ORGS)
        if kind == 0:
            parts = [(a, "PER"), ("met", None), (b, "PER"), ("in", None), (city, "LOC"), (".", None)]
        elif kind == 1:
            parts = [
                (org, "ORG"),
                ("opened", None),
                ("an", None),
                ("office", None),
                ("in", None),
                (city, "LOC"),
                (".", None),
            ]
        else:
            parts = [
                (a, "PER"),
                ("works", None),
                ("for", None),
                (org, "ORG"),
                ("and", None),
                ("likes", None),
                ("German", "MISC"),
                ("beer", None),
                (".", None),
            ]
        rows, prev = [], None
        for text, tag in parts:
            for k, word in enumerate(text.split()):
                if tag is None:
                    rows.append((word, "." if word == "." else "VB", "O", "O"))
                    prev = None
                    continue
                # IOB1: B- only when the previous token is an entity of the same type.
                prefix = "B" if (k == 0 and prev == tag) else "I"
                rows.append((word, pos.get(tag, "JJ"), "I-NP", f"{prefix}-{tag}"))
                prev = tag
        return rows

    for split, name in (("train", "eng.train"), ("dev", "eng.testa"), ("test", "eng.testb")):
        lines = ["-DOCSTART- -X- -X- O", ""]
        for i in range(SIZES[split]):
            rows = sentence()
            if i == 3:  # two adjacent persons: IOB1 needs B- on the second
                rows = [
                    ("Alice", "NNP", "I-NP", "I-PER"),
                    ("Bruno", "NNP", "I-NP", "B-PER"),
                    ("laughed", "VBD", "I-VP", "O"),
                    (".", ".", "O", "O"),
                ]
            lines.extend(" ".join(r) for r in rows)
            lines.append("")
        write(f"conll2003/{name}", "\n".join(lines) + "\n")


# ---- pretraining corpus ---------------------------------------------------------------------
def corpus():
    """The official input format: one sentence per line, a blank line between
    documents. Each document is a small story about one person, so sentences
    follow each other (next-sentence prediction has signal) and words repeat in
    patterns a tiny model can learn."""
    docs = []
    for _ in range(400):
        name, city, org, animal = R.choice(NAMES), R.choice(CITIES), R.choice(ORGS), R.choice(ANIMALS)
        place, verb = R.choice(PLACES), R.choice(VERBS)
        year = R.randint(1950, 2015)
        story = [
            f"{name} was born in {city} in {year}.",
            f"As a child, {name} loved the {animal} that lived in the {place}.",
            f"Every morning the {animal} {verb} in the {place}.",
            f"Later {name} joined {org} and moved away from {city}.",
            f"At {org}, {name} built tools for farmers and their animals.",
            f"Years later, {name} returned to {city} with a {animal} of their own.",
            f"The {animal} still {verb} in the {place} today.",
        ]
        docs.append(story[: R.randint(3, len(story))])
    write("pretraining/corpus.txt", "\n\n".join("\n".join(d) for d in docs) + "\n")


def main():
    for make in (cola, sst2, mrpc, qqp, stsb, mnli, ax, qnli, rte, wnli, xnli, squad, swag, conll, corpus):
        make()
    print("wrote samples to", HERE)


if __name__ == "__main__":
    main()


def vocab():
    """data/samples/vocab.txt: a WordPiece vocabulary learned from all samples
    (uncased), for the small models of the embedded suite."""
    import glob

    from workbench.text.tokenizer import build_vocab, save_vocab

    texts = []
    for path in sorted(glob.glob(os.path.join(HERE, "*", "*"))):
        with open(path, encoding="utf-8") as f:
            texts.extend(line for line in f.read().replace("\t", " ").replace(",", " , ").splitlines() if line.strip())
    save_vocab(build_vocab(texts, vocab_size=2000, lowercase=True), os.path.join(HERE, "vocab.txt"))


if __name__ == "__main__" and os.environ.get("WITH_VOCAB"):
    vocab()
