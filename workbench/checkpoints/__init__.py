"""Every source a `model` argument accepts (size names, keras-hub presets, Google releases, TF Model Garden,
Hugging Face directories and `hf://` handles, workbench runs), and export to each of those formats."""
