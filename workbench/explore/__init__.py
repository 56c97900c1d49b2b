"""Looking inside a model and its runs: the attention explorer, per-head statistics, hidden states
(`extract-features`) and plotly charts."""
