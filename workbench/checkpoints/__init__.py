"""Every source a `model` argument accepts (size names, keras-hub presets, Google releases, TF Model Garden,
Hugging Face directories and `hf://` handles, workbench runs), and export to each of those formats."""

# What an output of each format consists of, its mark first: a directory holding only these (an
# earlier output) may be replaced by a new one, nothing else (`workbench.files.atomic_directory`).
PRESET_FILES = ("metadata.json", "config.json", "model.weights.h5", "tokenizer.json", "assets")
GOOGLE_FILES = ("bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt")
SAVEDMODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")
