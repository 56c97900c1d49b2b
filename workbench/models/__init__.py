"""The model: `BertConfig`, the encoder (keras-hub's `BertBackbone` with the original's choices), the paper's heads,
BERT's optimizer, attention maps, and the faster layer classes the encoder is built from."""
